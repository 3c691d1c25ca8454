-- customer_waiting: the customer wrote last, asking for something (an intent other than none: not a
-- thank-you or a goodbye, which end most conversations), and nobody has answered for more than 15 minutes
-- (measured against the newest message, so a replayed archive fires as it would have live); conversations
-- idle for over a day are left to the daily reports.
--
-- Key: conversation_key (fires once per conversation).
-- Inputs: conversation_messages, messages.
WITH latest AS (
    SELECT max(ts) AS now FROM messages
),
last_message AS (
    SELECT conversation_key, channel, customer_id, sender_role, intent, ts
    FROM conversation_messages
    WHERE position = conversation_size
)
SELECT m.conversation_key, m.channel, m.customer_id, m.intent, m.ts AS waiting_since
FROM last_message AS m CROSS JOIN latest AS l
WHERE m.sender_role = 'customer' AND m.intent <> 'none'
    AND m.ts < l.now - INTERVAL '15 minutes'
    AND m.ts >= l.now - INTERVAL '1 day'
