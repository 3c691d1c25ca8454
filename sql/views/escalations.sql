-- escalations: the conversations that escalated, one row each.
--
-- Definition: escalated and escalation_reason as in conversations ('handoff': a bot handed the customer
-- to a human; 'customer_request': the customer asked for a human; 'transfer': more than one agent).
-- escalated_at is the first human agent message (NULL when the customer asked but no agent answered).
--
-- Inputs: conversation_messages, conversations.
-- Outputs: conversation_key, channel, customer_id, week, started_at, escalated_at, escalation_reason,
--   handoff_s, agents, opening_intent, first_sentiment, last_sentiment, resolved.
CREATE OR REPLACE VIEW escalations AS
SELECT
    c.conversation_key,
    c.channel,
    c.customer_id,
    c.week,
    c.started_at,
    a.escalated_at,
    c.escalation_reason,
    c.handoff_s,
    c.agents,
    c.opening_intent,
    c.first_sentiment,
    c.last_sentiment,
    c.resolved
FROM conversations AS c
LEFT JOIN (
    SELECT conversation_key, min(ts) AS escalated_at
    FROM conversation_messages
    WHERE sender_role = 'agent'
    GROUP BY conversation_key
) AS a ON a.conversation_key = c.conversation_key
WHERE c.escalated;
