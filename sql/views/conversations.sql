-- conversations: one row per conversation (see conversation_messages for how chats are cut).
--
-- Definition
--   Times are in seconds, to the millisecond. Only conversations with at least one customer message count (a Slack "joined the channel" notice is
--   not a conversation). The customer is the conversation's first customer sender.
--   language         language() of all the customer's text in the conversation, joined.
--   opening_intent   intent() of the first customer message whose intent is not 'none' ('none' if no
--                    message has one).
--   first/last_sentiment  sentiment() of the first and the last customer message that has a score.
--   first_response_s       seconds from the first customer message to the first bot or agent message
--                          after it; first_agent_response_s the same for the first human agent message.
--   handoff_s        seconds from the last bot message before the first agent message to that agent
--                    message (the wait after a bot hands the customer over); NULL without a bot handoff.
--   escalated        a bot handed the customer to a human (escalation_reason 'handoff'), else the
--                    customer asked for a human ('customer_request', intent human_agent), else more than
--                    one agent took part ('transfer').
--   repeat_contact   the same customer had a conversation with the same opening intent that ended at most
--                    `colloquy.analytics.fcr_window_days` (default 7) days before this one started.
--   resolved         the customer did not come back with the same opening intent within that many days
--                    of the end: false when they did; NULL while the window is still open (it ends after
--                    the last message of the archive), true otherwise.
--   ended_negative   last_sentiment < -0.2.
--   week             the Monday (UTC) of started_at's week.
--
-- Inputs: conversation_messages.
-- Outputs: conversation_key, channel, conversation_id, customer_id, week, started_at, ended_at,
--   duration_s, messages, customer_messages, agent_messages, bot_messages, agents, first_agent_id,
--   first_agent_name, language, opening_intent, first_sentiment, last_sentiment, scored_messages,
--   first_response_s, first_agent_response_s, handoff_s, handed_off, escalated, escalation_reason,
--   answered, ended_negative, repeat_contact, resolved.
CREATE OR REPLACE VIEW conversations AS
WITH per_conversation AS (
    SELECT
        conversation_key,
        min(channel) AS channel,
        min(conversation_id) AS conversation_id,
        first_value(customer_id ORDER BY position) FILTER (WHERE customer_id IS NOT NULL) AS customer_id,
        min(ts) AS started_at,
        max(ts) AS ended_at,
        count(*) AS messages,
        count(*) FILTER (WHERE sender_role = 'customer') AS customer_messages,
        count(*) FILTER (WHERE sender_role = 'agent') AS agent_messages,
        count(*) FILTER (WHERE sender_role = 'bot') AS bot_messages,
        -- count(DISTINCT sender_id) FILTER (WHERE sender_role = 'agent'), computed as the distinct
        -- elements of a list: DataFusion 55 groups a distinct count through one accumulator object per
        -- conversation, 50x slower over a million messages (benches/README.md).
        CAST(coalesce(cardinality(array_distinct(
            array_agg(sender_id) FILTER (WHERE sender_role = 'agent' AND sender_id IS NOT NULL)
        )), 0) AS BIGINT) AS agents,
        first_value(sender_id ORDER BY position) FILTER (WHERE sender_role = 'agent') AS first_agent_id,
        first_value(sender_name ORDER BY position) FILTER (WHERE sender_role = 'agent') AS first_agent_name,
        -- concat_in_order(text, position) is string_agg(text, ' ' ORDER BY position) in one grouped
        -- pass (DataFusion 55 keeps an accumulator object per conversation for an ordered aggregate).
        language(concat_in_order(text, position) FILTER (WHERE sender_role = 'customer')) AS language,
        coalesce(
            first_value(intent ORDER BY position) FILTER (WHERE intent IS NOT NULL AND intent <> 'none'),
            'none'
        ) AS opening_intent,
        coalesce(bool_or(intent = 'human_agent'), false) AS asked_for_agent,
        first_value(sentiment ORDER BY position) FILTER (WHERE sentiment IS NOT NULL) AS first_sentiment,
        last_value(sentiment ORDER BY position) FILTER (WHERE sentiment IS NOT NULL) AS last_sentiment,
        count(sentiment) AS scored_messages,
        min(ts) FILTER (WHERE sender_role = 'customer') AS first_customer_at,
        min(ts) FILTER (WHERE sender_role IN ('agent', 'bot') AND after_customer) AS first_response_at,
        min(ts) FILTER (WHERE sender_role = 'agent' AND after_customer) AS first_agent_response_at,
        first_value(round(date_part('epoch', ts) - date_part('epoch', last_bot_at), 3) ORDER BY position)
            FILTER (WHERE sender_role = 'agent') AS handoff_s
    FROM conversation_messages
    GROUP BY conversation_key
    HAVING count(*) FILTER (WHERE sender_role = 'customer') > 0
),
with_history AS (
    -- The previous and next conversation of the same customer with the same opening intent. One window
    -- ordered by customer and intent, with the neighbour kept only when it has the same pair, rather than
    -- PARTITION BY customer_id, opening_intent: DataFusion 55 handles each of ~100k partitions on its own
    -- (0.84 CPU seconds over 138k conversations, benches/README.md). NULLs match NULLs, as in PARTITION BY.
    SELECT
        *,
        CASE
            WHEN (lag(customer_id) OVER same_need IS NOT DISTINCT FROM customer_id)
                AND (lag(opening_intent) OVER same_need IS NOT DISTINCT FROM opening_intent)
            THEN date_part('epoch', lag(ended_at) OVER same_need)
        END AS previous_ended_s,
        CASE
            WHEN (lead(customer_id) OVER same_need IS NOT DISTINCT FROM customer_id)
                AND (lead(opening_intent) OVER same_need IS NOT DISTINCT FROM opening_intent)
            THEN date_part('epoch', lead(started_at) OVER same_need)
        END AS next_started_s,
        date_part('epoch', max(ended_at) OVER ()) AS archive_ends_s,
        86400 * CAST(current_setting('colloquy.analytics.fcr_window_days') AS DOUBLE) AS window_s
    FROM per_conversation
    WINDOW same_need AS (ORDER BY customer_id, opening_intent, started_at, conversation_key)
)
SELECT
    conversation_key,
    channel,
    conversation_id,
    customer_id,
    CAST(date_trunc('week', started_at) AS DATE) AS week,
    started_at,
    ended_at,
    round(date_part('epoch', ended_at) - date_part('epoch', started_at), 3) AS duration_s,
    messages,
    customer_messages,
    agent_messages,
    bot_messages,
    agents,
    first_agent_id,
    first_agent_name,
    language,
    opening_intent,
    first_sentiment,
    last_sentiment,
    scored_messages,
    round(date_part('epoch', first_response_at) - date_part('epoch', first_customer_at), 3) AS first_response_s,
    round(date_part('epoch', first_agent_response_at) - date_part('epoch', first_customer_at), 3) AS first_agent_response_s,
    handoff_s,
    handoff_s IS NOT NULL AS handed_off,
    handoff_s IS NOT NULL OR asked_for_agent OR agents > 1 AS escalated,
    CASE
        WHEN handoff_s IS NOT NULL THEN 'handoff'
        WHEN asked_for_agent THEN 'customer_request'
        WHEN agents > 1 THEN 'transfer'
    END AS escalation_reason,
    first_response_at IS NOT NULL AS answered,
    coalesce(last_sentiment < -0.2, false) AS ended_negative,
    coalesce(date_part('epoch', started_at) - previous_ended_s <= window_s, false) AS repeat_contact,
    CASE
        WHEN next_started_s - date_part('epoch', ended_at) <= window_s THEN false
        WHEN archive_ends_s - date_part('epoch', ended_at) >= window_s THEN true
    END AS resolved
FROM with_history;
