-- conversation_messages: every message of `messages` with the conversation it belongs to.
--
-- Definition
--   A chat is one (channel, conversation_id) of the archive; in Slack also one thread (a reply's reply_to
--   names its thread's root, as Slack's thread_ts does). A chat is cut into conversations wherever a
--   message comes more than `colloquy.analytics.conversation_gap_minutes` (default 120) after the
--   previous one. Messages with equal timestamps keep the order of the export (source, source_line).
--   Messages without a timestamp cannot be placed and are left out.
--   A customer is (channel, sender_id), or the customer_id that the optional table
--   customer_identities(channel, sender_id, customer_id) gives that pair (one customer across channels).
--   sentiment and intent are scored for customer messages only (NULL for the others); like every column
--   here they cost nothing unless a query reads them.
--
-- Inputs: messages; customer_identities when it exists.
-- Outputs, one row per message:
--   conversation_key   text       unique id: channel/conversation_id[/thread]#n (n-th conversation of the chat)
--   channel, conversation_id, message_id, ts, sender_id, sender_name, sender_role, text: as in messages
--   customer_id        text       the customer, on customer messages (NULL on the others)
--   position           bigint     1 for the conversation's first message, 2 for the next, ...
--   conversation_size  bigint     messages in the conversation
--   started_at         timestamp  the conversation's first message
--   after_customer     boolean    a customer message came earlier in the conversation
--   last_bot_at        timestamp  the latest earlier bot message of the conversation (NULL: none)
--   sentiment          double     sentiment(text) of customer messages
--   intent             text       intent(text) of customer messages
CREATE OR REPLACE VIEW conversation_messages AS
WITH chat_messages AS (
    SELECT
        m.channel,
        m.conversation_id,
        CASE WHEN m.channel = 'slack' THEN coalesce(m.reply_to, m.message_id, '') ELSE '' END AS thread,
        m.message_id,
        m.ts,
        m.sender_id,
        m.sender_name,
        m.sender_role,
        m.text,
        m.source,
        m.source_line,
        CASE
            WHEN m.sender_role = 'customer'
            THEN coalesce(ci.customer_id, m.channel || ':' || coalesce(m.sender_id, m.sender_name, '?'))
        END AS customer_id
    FROM messages AS m
    LEFT JOIN customer_identities AS ci ON ci.channel = m.channel AND ci.sender_id = m.sender_id
    WHERE m.ts IS NOT NULL
),
sessions AS (
    -- One pass over the chats in time order (udfs/src/sessionize.rs): the conversation number, and each
    -- message's place in its conversation. The chat is given as arguments and the window is partitioned
    -- by a bucket of 256 of the conversation id: DataFusion calls the function once per bucket (once per
    -- chat cost 1.7 CPU-s over 150k chats), and the buckets still spread the rows over the cores and a
    -- cluster's tasks (one window partition for all rows would hold every message in one batch).
    SELECT
        *,
        sessionize(
            ts,
            sender_role,
            60 * CAST(current_setting('colloquy.analytics.conversation_gap_minutes') AS DOUBLE),
            channel,
            conversation_id,
            thread
        ) OVER (
            PARTITION BY substr(md5(conversation_id), 1, 2)
            ORDER BY channel, conversation_id, thread, ts, source, source_line
        ) AS s
    FROM chat_messages
)
SELECT
    channel || '/' || conversation_id || CASE WHEN thread = '' THEN '' ELSE '/' || thread END
        || '#' || CAST(s['conversation'] AS VARCHAR) AS conversation_key,
    channel,
    conversation_id,
    message_id,
    ts,
    sender_id,
    sender_name,
    sender_role,
    text,
    customer_id,
    s['position'] AS position,
    s['size'] AS conversation_size,
    s['started_at'] AS started_at,
    s['after_customer'] AS after_customer,
    s['last_bot_at'] AS last_bot_at,
    CASE WHEN sender_role = 'customer' THEN sentiment(text) END AS sentiment,
    CASE WHEN sender_role = 'customer' THEN intent(text) END AS intent
FROM sessions;
