-- agent_scorecards: one row per human agent over the whole archive.
--
-- Definition
--   An agent is a sender_id with the role agent. conversations = conversations the agent wrote in;
--   first_responder_conversations = those where the agent was the first human to answer, over which
--   p50/p90_first_response_s time first_agent_response_s (see conversations). resolution_rate = resolved /
--   decided over the agent's conversations; avg_sentiment_change = mean(last_sentiment - first_sentiment)
--   of the customer in the agent's conversations with two or more scored customer messages.
--   Filter conversations by week first and group the same way for a weekly scorecard.
--
-- Inputs: conversation_messages, conversations.
-- Outputs: agent_id, agent_name, channels, conversations, messages, first_responder_conversations,
--   p50_first_response_s, p90_first_response_s, escalated_share, resolution_rate, avg_last_sentiment,
--   avg_sentiment_change, first_seen, last_seen.
CREATE OR REPLACE VIEW agent_scorecards AS
WITH agent_conversations AS (
    SELECT
        sender_id AS agent_id,
        conversation_key,
        min(sender_name) AS agent_name,
        count(*) AS messages,
        min(ts) AS first_ts,
        max(ts) AS last_ts
    FROM conversation_messages
    WHERE sender_role = 'agent' AND sender_id IS NOT NULL
    GROUP BY sender_id, conversation_key
)
SELECT
    a.agent_id,
    min(a.agent_name) AS agent_name,
    count(DISTINCT c.channel) AS channels,
    count(*) AS conversations,
    sum(a.messages) AS messages,
    count(*) FILTER (WHERE c.first_agent_id = a.agent_id) AS first_responder_conversations,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY CASE WHEN c.first_agent_id = a.agent_id THEN c.first_agent_response_s END)
        AS p50_first_response_s,
    percentile_cont(0.9) WITHIN GROUP (ORDER BY CASE WHEN c.first_agent_id = a.agent_id THEN c.first_agent_response_s END)
        AS p90_first_response_s,
    CAST(count(*) FILTER (WHERE c.escalated) AS DOUBLE) / count(*) AS escalated_share,
    CAST(count(*) FILTER (WHERE c.resolved) AS DOUBLE) / nullif(count(c.resolved), 0) AS resolution_rate,
    avg(c.last_sentiment) AS avg_last_sentiment,
    avg(CASE WHEN c.scored_messages >= 2 THEN c.last_sentiment - c.first_sentiment END) AS avg_sentiment_change,
    min(a.first_ts) AS first_seen,
    max(a.last_ts) AS last_seen
FROM agent_conversations AS a
JOIN conversations AS c ON c.conversation_key = a.conversation_key
GROUP BY a.agent_id;
