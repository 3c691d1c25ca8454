-- response_times: how long customers wait, by channel and week.
--
-- Definition (per conversation, see conversations)
--   first_response_s        first customer message to the first bot or agent message after it;
--   first_agent_response_s  first customer message to the first human agent message after it;
--   handoff_s               last bot message before the first agent message to that agent message.
--   Percentiles are exact (percentile_cont, linear interpolation) over the conversations that have the
--   value; conversations without it (never answered, no handoff) are counted but not timed.
--
-- Inputs: conversations.
-- Outputs: channel, week, conversations, answered, p50_first_response_s, p90_first_response_s,
--   agent_answered, p50_first_agent_response_s, p90_first_agent_response_s, handoffs, p50_handoff_s,
--   p90_handoff_s.
CREATE OR REPLACE VIEW response_times AS
SELECT
    channel,
    week,
    count(*) AS conversations,
    count(first_response_s) AS answered,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY first_response_s) AS p50_first_response_s,
    percentile_cont(0.9) WITHIN GROUP (ORDER BY first_response_s) AS p90_first_response_s,
    count(first_agent_response_s) AS agent_answered,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY first_agent_response_s) AS p50_first_agent_response_s,
    percentile_cont(0.9) WITHIN GROUP (ORDER BY first_agent_response_s) AS p90_first_agent_response_s,
    count(handoff_s) AS handoffs,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY handoff_s) AS p50_handoff_s,
    percentile_cont(0.9) WITHIN GROUP (ORDER BY handoff_s) AS p90_handoff_s
FROM conversations
GROUP BY channel, week;
