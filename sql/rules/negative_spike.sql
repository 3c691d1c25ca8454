-- negative_spike: in the newest hour of traffic, the customer messages about one intent on one channel
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
latest AS (
    SELECT date_trunc('hour', max(ts)) AS hour FROM conversation_messages
),
this_hour AS (
    SELECT c.channel, c.intent, c.hour, count(*) AS messages, sum(c.negative) AS negatives
    FROM customer AS c JOIN latest AS l ON c.hour = l.hour
    GROUP BY c.channel, c.intent, c.hour
),
week AS (
    SELECT c.channel, c.intent, CAST(sum(c.negative) AS DOUBLE) / count(*) AS share
    FROM customer AS c CROSS JOIN latest AS l
    WHERE c.hour >= l.hour - INTERVAL '7 days' AND c.hour < l.hour
    GROUP BY c.channel, c.intent
)
SELECT
    h.channel || '/' || h.intent || '/' || CAST(h.hour AS VARCHAR) AS spike_key,
    h.channel,
    h.intent,
    h.hour,
    h.negatives,
    h.messages,
    round(CAST(h.negatives AS DOUBLE) / h.messages, 2) AS negative_share,
    round(coalesce(w.share, 0), 3) AS usual_share
FROM this_hour AS h
LEFT JOIN week AS w ON w.channel = h.channel AND w.intent = h.intent
WHERE h.negatives >= 5 AND CAST(h.negatives AS DOUBLE) / h.messages >= 2 * coalesce(w.share, 0) + 0.15
