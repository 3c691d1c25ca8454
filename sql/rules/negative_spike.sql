-- negative_spike: in an hour of traffic (one of the newest three), the customer messages about one intent on one channel
-- turned negative far more often than that pair's did over the seven days before: at least 5 negative
-- messages, and a negative share of at least twice the week's plus 0.15 (an incident: tracking links down,
-- a double charge), so someone looks at it while it is happening. Shares, not counts: a busy hour has more
-- of everything, and comparing counts with a day's hourly mean fired every morning.
--
-- Key: spike_key = channel/intent/hour (fires once per channel, intent and hour).
-- Scope: the conversations with a message in the last 8 days (the week before the newest hour).
-- Inputs: conversation_messages. "Now" is the newest message's hour, so a replayed archive fires as it would
-- have live.
WITH customer AS (
    SELECT channel, intent, date_trunc('hour', ts) AS hour, CASE WHEN sentiment < -0.3 THEN 1 ELSE 0 END AS negative
    FROM conversation_messages
    WHERE sender_role = 'customer' AND sentiment IS NOT NULL AND intent IS NOT NULL AND intent <> 'none'
),
hourly AS (
    SELECT channel, intent, hour, count(*) AS messages, sum(negative) AS negatives
    FROM customer
    GROUP BY channel, intent, hour
),
latest AS (
    SELECT date_trunc('hour', max(ts)) AS hour FROM conversation_messages
),
-- The newest three hours, not only the newest: an evaluation can come after an hour has passed (a busy
-- server, a fast replay), and that hour must still be judged.
recent AS (
    SELECT h.* FROM hourly AS h CROSS JOIN latest AS l WHERE h.hour >= l.hour - INTERVAL '2 hours'
),
scored AS (
    SELECT r.channel, r.intent, r.hour, r.messages, r.negatives,
        CAST(sum(w.negatives) AS DOUBLE) / sum(w.messages) AS usual_share
    FROM recent AS r
    LEFT JOIN hourly AS w ON w.channel = r.channel AND w.intent = r.intent
        AND w.hour >= r.hour - INTERVAL '7 days' AND w.hour < r.hour
    GROUP BY r.channel, r.intent, r.hour, r.messages, r.negatives
)
SELECT
    channel || '/' || intent || '/' || CAST(hour AS VARCHAR) AS spike_key,
    channel,
    intent,
    hour,
    negatives,
    messages,
    round(CAST(negatives AS DOUBLE) / messages, 2) AS negative_share,
    round(coalesce(usual_share, 0), 3) AS usual_share
FROM scored
WHERE negatives >= 5 AND CAST(negatives AS DOUBLE) / messages >= 2 * coalesce(usual_share, 0) + 0.15
