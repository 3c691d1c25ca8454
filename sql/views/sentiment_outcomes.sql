-- sentiment_outcomes: how often conversations end better or worse than they began, by channel and week.
--
-- Definition
--   Over conversations with at least two scored customer messages: change = last_sentiment -
--   first_sentiment (see conversations); ended_better when change >= 0.2, ended_worse when
--   change <= -0.2, unchanged otherwise.
--
-- Inputs: conversations.
-- Outputs: channel, week, conversations (with two or more scored messages), ended_better, ended_worse,
--   unchanged, better_share, worse_share, avg_first_sentiment, avg_last_sentiment, avg_change.
CREATE OR REPLACE VIEW sentiment_outcomes AS
SELECT
    channel,
    week,
    count(*) AS conversations,
    count(*) FILTER (WHERE last_sentiment - first_sentiment >= 0.2) AS ended_better,
    count(*) FILTER (WHERE last_sentiment - first_sentiment <= -0.2) AS ended_worse,
    count(*) FILTER (WHERE abs(last_sentiment - first_sentiment) < 0.2) AS unchanged,
    CAST(count(*) FILTER (WHERE last_sentiment - first_sentiment >= 0.2) AS DOUBLE) / count(*) AS better_share,
    CAST(count(*) FILTER (WHERE last_sentiment - first_sentiment <= -0.2) AS DOUBLE) / count(*) AS worse_share,
    avg(first_sentiment) AS avg_first_sentiment,
    avg(last_sentiment) AS avg_last_sentiment,
    avg(last_sentiment - first_sentiment) AS avg_change
FROM conversations
WHERE scored_messages >= 2
GROUP BY channel, week;
