-- drift_weekly: does this week's customer traffic differ from the previous week's, per channel?
--
-- Definition
--   For each channel and week with customer conversations in both that week and the week before, drift()
--   compares the conversations that started in the week (current) with those of the previous week
--   (reference): the opening customer message's text (domain classifier), the opening intent
--   (categorical: intent() of that message) and the mean sentiment of the conversation's customer
--   messages (numeric). The unit is the conversation, not the message: a conversation's messages share
--   their topic and wording, and counted one by one they made quiet weeks look different.
--   A test counts as drifted when drift() says so and, where it gives a p-value, p < 0.008 (a family-wise
--   2.5% shared by the three tests): on quiet weeks of the demo `drifted` (any of the three) then raises
--   4.4% false alarms and still catches every onset of its incident, where drift()'s own 5% level per
--   message raised a third (benches/README.md, "drift_weekly: false alarms").
--   top_intents lists the intents whose share moved most.
--
-- Inputs: conversation_messages.
-- Outputs: channel, week, reference_week, reference_conversations, current_conversations, text_score,
--   text_drifted, intent_score, intent_drifted, top_intents, sentiment_score, sentiment_drifted,
--   sentiment_mean, reference_sentiment_mean (means over conversations), drifted (any of the three).
CREATE OR REPLACE VIEW drift_weekly AS
WITH scored AS (
    SELECT
        channel,
        CAST(date_trunc('week', min(ts)) AS DATE) AS week,
        first_value(text ORDER BY position) AS text,
        first_value(intent ORDER BY position) AS intent,
        avg(sentiment) AS sentiment
    FROM conversation_messages
    WHERE sender_role = 'customer' AND text IS NOT NULL
    GROUP BY channel, conversation_key
),
paired AS (
    -- every conversation is current in its own week and reference for the next one
    SELECT
        s.channel,
        CASE WHEN k.is_current THEN s.week ELSE s.week + INTERVAL '7 days' END AS week,
        k.is_current,
        s.text,
        s.intent,
        s.sentiment
    FROM scored AS s
    CROSS JOIN (VALUES (true), (false)) AS k(is_current)
),
compared AS (
    SELECT
        channel,
        week,
        count(*) FILTER (WHERE NOT is_current) AS reference_conversations,
        count(*) FILTER (WHERE is_current) AS current_conversations,
        drift(text, is_current) AS text_drift,
        drift(intent, is_current, 'categorical') AS intent_drift,
        drift(sentiment, is_current) AS sentiment_drift,
        avg(sentiment) FILTER (WHERE is_current) AS sentiment_mean,
        avg(sentiment) FILTER (WHERE NOT is_current) AS reference_sentiment_mean
    FROM paired
    GROUP BY channel, week
    HAVING count(*) FILTER (WHERE NOT is_current) > 0 AND count(*) FILTER (WHERE is_current) > 0
),
flagged AS (
    SELECT
        *,
        text_drift['drifted'] AND coalesce(text_drift['p_value'] < 0.008, true) AS text_drifted,
        intent_drift['drifted'] AND coalesce(intent_drift['p_value'] < 0.008, true) AS intent_drifted,
        sentiment_drift['drifted'] AND coalesce(sentiment_drift['p_value'] < 0.008, true) AS sentiment_drifted
    FROM compared
)
SELECT
    channel,
    week,
    CAST(week - INTERVAL '7 days' AS DATE) AS reference_week,
    reference_conversations,
    current_conversations,
    text_drift['score'] AS text_score,
    text_drifted,
    intent_drift['score'] AS intent_score,
    intent_drifted,
    intent_drift['top_terms'] AS top_intents,
    sentiment_drift['score'] AS sentiment_score,
    sentiment_drifted,
    sentiment_mean,
    reference_sentiment_mean,
    text_drifted OR intent_drifted OR sentiment_drifted AS drifted
FROM flagged;
