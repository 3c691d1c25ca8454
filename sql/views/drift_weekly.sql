-- drift_weekly: does this week's customer traffic differ from the previous week's, per channel?
--
-- Definition
--   For each channel and week with customer messages in both that week and the week before, drift()
--   compares the customer messages of the week (current) with those of the previous week (reference):
--   the text itself (domain classifier), the intents (categorical: intent() of each message) and the
--   sentiment scores (numeric). See drift() in udfs/README.md for the tests and their thresholds.
--   top_intents lists the intents whose share moved most.
--
-- Inputs: conversation_messages.
-- Outputs: channel, week, reference_week, reference_messages, current_messages, text_score,
--   text_drifted, intent_score, intent_drifted, top_intents, sentiment_score, sentiment_drifted,
--   sentiment_mean, reference_sentiment_mean, drifted (any of the three).
CREATE OR REPLACE VIEW drift_weekly AS
WITH scored AS (
    SELECT
        channel,
        CAST(date_trunc('week', ts) AS DATE) AS week,
        text,
        intent,
        sentiment
    FROM conversation_messages
    WHERE sender_role = 'customer' AND text IS NOT NULL
),
paired AS (
    -- every message is current in its own week and reference for the next one
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
        count(*) FILTER (WHERE NOT is_current) AS reference_messages,
        count(*) FILTER (WHERE is_current) AS current_messages,
        drift(text, is_current) AS text_drift,
        drift(intent, is_current, 'categorical') AS intent_drift,
        drift(sentiment, is_current) AS sentiment_drift,
        avg(sentiment) FILTER (WHERE is_current) AS sentiment_mean,
        avg(sentiment) FILTER (WHERE NOT is_current) AS reference_sentiment_mean
    FROM paired
    GROUP BY channel, week
    HAVING count(*) FILTER (WHERE NOT is_current) > 0 AND count(*) FILTER (WHERE is_current) > 0
)
SELECT
    channel,
    week,
    CAST(week - INTERVAL '7 days' AS DATE) AS reference_week,
    reference_messages,
    current_messages,
    text_drift['score'] AS text_score,
    text_drift['drifted'] AS text_drifted,
    intent_drift['score'] AS intent_score,
    intent_drift['drifted'] AS intent_drifted,
    intent_drift['top_terms'] AS top_intents,
    sentiment_drift['score'] AS sentiment_score,
    sentiment_drift['drifted'] AS sentiment_drifted,
    sentiment_mean,
    reference_sentiment_mean,
    text_drift['drifted'] OR intent_drift['drifted'] OR sentiment_drift['drifted'] AS drifted
FROM compared;
