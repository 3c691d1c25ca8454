-- sentiment_trajectory: each conversation's customer sentiment in ten equal slices of its length.
--
-- Definition
--   A conversation of n messages is cut by position into ten slices: the message at position p (1..n)
--   falls in slice 1 + floor(10 * (p - 1) / n), so slice 1 holds the opening and slice 10 the end
--   (short conversations leave slices empty: a conversation of 4 messages uses slices 1, 3, 6 and 8).
--   sentiment is the mean sentiment() of the customer messages in the slice; slices without a scored
--   customer message have no row. Average by slice over many conversations for the typical trajectory.
--
-- Inputs: conversation_messages.
-- Outputs: conversation_key, channel, week, slice (1..10), sentiment, messages (scored customer messages).
CREATE OR REPLACE VIEW sentiment_trajectory AS
SELECT
    conversation_key,
    min(channel) AS channel,
    min(CAST(date_trunc('week', started_at) AS DATE)) AS week,
    CAST(1 + floor(10.0 * (position - 1) / conversation_size) AS BIGINT) AS slice,
    avg(sentiment) AS sentiment,
    count(*) AS messages
FROM conversation_messages
WHERE sentiment IS NOT NULL
GROUP BY conversation_key, CAST(1 + floor(10.0 * (position - 1) / conversation_size) AS BIGINT);
