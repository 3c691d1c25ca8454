-- routing_alerts: an example routing rule written as a query — conversations whose last three customer
-- messages all score below `colloquy.analytics.alert_threshold` (default -0.3), most recent first.
--
-- Definition
--   Over each conversation's last three customer messages with a sentiment score (conversations with
--   fewer than three have no alert). awaiting_reply: the conversation's last message is the customer's.
--   Restrict it to new messages the way a router would, e.g.
--   SELECT * FROM routing_alerts WHERE last_message_at > now() - INTERVAL '15 minutes' AND awaiting_reply.
--
-- Inputs: conversation_messages, conversations.
-- Outputs: conversation_key, channel, customer_id, opening_intent, last_message_at, awaiting_reply,
--   last_sentiments (oldest first), mean_sentiment, last_texts (oldest first).
CREATE OR REPLACE VIEW routing_alerts AS
WITH ranked AS (
    SELECT
        conversation_key,
        position,
        conversation_size,
        sentiment,
        text,
        row_number() OVER (PARTITION BY conversation_key ORDER BY position DESC) AS from_end
    FROM conversation_messages
    WHERE sentiment IS NOT NULL
),
last_three AS (
    SELECT
        conversation_key,
        max(sentiment) AS max_sentiment,
        avg(sentiment) AS mean_sentiment,
        array_agg(sentiment ORDER BY position) AS last_sentiments,
        array_agg(text ORDER BY position) AS last_texts,
        max(position) = max(conversation_size) AS awaiting_reply
    FROM ranked
    WHERE from_end <= 3
    GROUP BY conversation_key
    HAVING count(*) = 3
)
SELECT
    c.conversation_key,
    c.channel,
    c.customer_id,
    c.opening_intent,
    c.ended_at AS last_message_at,
    l.awaiting_reply,
    l.last_sentiments,
    l.mean_sentiment,
    l.last_texts
FROM last_three AS l
JOIN conversations AS c ON c.conversation_key = l.conversation_key
WHERE l.max_sentiment < CAST(current_setting('colloquy.analytics.alert_threshold') AS DOUBLE);
