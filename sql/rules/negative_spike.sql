-- negative_spike: negative customer messages about one intent on one channel, in the newest hour of
-- traffic, at least 5 and at least three times that pair's hourly mean over the 24 hours before (an
-- incident: tracking links down, a double charge), so someone looks at it while it is happening.
--
-- Key: spike_key = channel/intent/hour (fires once per channel, intent and hour).
-- Inputs: conversation_messages. "Now" is the newest message's hour, so a replayed archive fires as it would
-- have live.
WITH negative AS (
    SELECT channel, intent, date_trunc('hour', ts) AS hour
    FROM conversation_messages
    WHERE sender_role = 'customer' AND sentiment < -0.3 AND intent IS NOT NULL AND intent <> 'none'
),
latest AS (
    SELECT date_trunc('hour', max(ts)) AS hour FROM conversation_messages
),
hourly AS (
    SELECT channel, intent, hour, count(*) AS negatives FROM negative GROUP BY channel, intent, hour
),
usual AS (
    SELECT h.channel, h.intent, sum(h.negatives) / 24.0 AS per_hour
    FROM hourly AS h CROSS JOIN latest AS l
    WHERE h.hour >= l.hour - INTERVAL '24 hours' AND h.hour < l.hour
    GROUP BY h.channel, h.intent
)
SELECT
    h.channel || '/' || h.intent || '/' || CAST(h.hour AS VARCHAR) AS spike_key,
    h.channel,
    h.intent,
    h.hour,
    h.negatives,
    coalesce(u.per_hour, 0) AS usual_per_hour
FROM hourly AS h
JOIN latest AS l ON h.hour = l.hour
LEFT JOIN usual AS u ON u.channel = h.channel AND u.intent = h.intent
WHERE h.negatives >= 5 AND h.negatives >= 3 * coalesce(u.per_hour, 0)
