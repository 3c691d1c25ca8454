-- escalation_rates: escalation and bot containment by channel and week.
--
-- Definition
--   escalation_rate   escalated conversations / conversations (escalated as in conversations).
--   bot_conversations conversations in which a bot wrote; contained: of those, the ones no human agent
--                     joined; containment_rate = contained / bot_conversations.
--
-- Inputs: conversations.
-- Outputs: channel, week, conversations, escalated, handoffs, customer_requests, transfers,
--   escalation_rate, bot_conversations, contained, containment_rate.
CREATE OR REPLACE VIEW escalation_rates AS
SELECT
    channel,
    week,
    count(*) AS conversations,
    count(*) FILTER (WHERE escalated) AS escalated,
    count(*) FILTER (WHERE escalation_reason = 'handoff') AS handoffs,
    count(*) FILTER (WHERE escalation_reason = 'customer_request') AS customer_requests,
    count(*) FILTER (WHERE escalation_reason = 'transfer') AS transfers,
    CAST(count(*) FILTER (WHERE escalated) AS DOUBLE) / count(*) AS escalation_rate,
    count(*) FILTER (WHERE bot_messages > 0) AS bot_conversations,
    count(*) FILTER (WHERE bot_messages > 0 AND agent_messages = 0) AS contained,
    CAST(count(*) FILTER (WHERE bot_messages > 0 AND agent_messages = 0) AS DOUBLE)
        / nullif(count(*) FILTER (WHERE bot_messages > 0), 0) AS containment_rate
FROM conversations
GROUP BY channel, week;
