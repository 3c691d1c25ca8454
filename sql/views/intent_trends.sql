-- intent_trends: top intents by channel and week, with their sentiment and resolution.
--
-- Definition
--   Conversations grouped by opening_intent (see conversations). share = the intent's conversations / all
--   conversations of the channel and week; rank 1 is the most frequent intent of the channel and week
--   (ties by name). negative_share = share of the intent's conversations that ended_negative.
--   resolution_rate = resolved / decided (conversations whose FCR window has closed).
--
-- Inputs: conversations.
-- Outputs: channel, week, intent, conversations, share, rank, avg_first_sentiment, avg_last_sentiment,
--   negative_share, escalation_rate, resolution_rate.
CREATE OR REPLACE VIEW intent_trends AS
WITH per_intent AS (
    SELECT
        channel,
        week,
        opening_intent AS intent,
        count(*) AS conversations,
        avg(first_sentiment) AS avg_first_sentiment,
        avg(last_sentiment) AS avg_last_sentiment,
        CAST(count(*) FILTER (WHERE ended_negative) AS DOUBLE) / count(*) AS negative_share,
        CAST(count(*) FILTER (WHERE escalated) AS DOUBLE) / count(*) AS escalation_rate,
        CAST(count(*) FILTER (WHERE resolved) AS DOUBLE) / nullif(count(resolved), 0) AS resolution_rate
    FROM conversations
    GROUP BY channel, week, opening_intent
)
SELECT
    channel,
    week,
    intent,
    conversations,
    CAST(conversations AS DOUBLE) / sum(conversations) OVER (PARTITION BY channel, week) AS share,
    row_number() OVER (PARTITION BY channel, week ORDER BY conversations DESC, intent) AS rank,
    avg_first_sentiment,
    avg_last_sentiment,
    negative_share,
    escalation_rate,
    resolution_rate
FROM per_intent;
