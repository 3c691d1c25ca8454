-- negative_streak: a conversation whose last three customer messages all score below
-- `colloquy.analytics.alert_threshold` (default -0.3), still waiting for a reply: route it to a senior agent.
--
-- Key: conversation_key (fires once per conversation).
-- Inputs: routing_alerts.
SELECT conversation_key, channel, customer_id, opening_intent, last_message_at, mean_sentiment, last_texts
FROM routing_alerts
WHERE awaiting_reply
