-- model_quality: the text models scored against reviewed labels, per channel, week and label.
--
-- Definition
--   Reads the optional table labels(message_id, task, label): a reviewer's label for one message of
--   `messages`, where task names the model judged: 'intent' (intent(text)), 'sentiment'
--   (sentiment_label(text)) or 'language' (language(text)). A function replaced in the session (an ONNX
--   model registered as intent, say) is the one scored. The view exists only while `labels` does.
--   Each (channel, week, task) gets classification_report(predicted, label): one row per label, then
--   'accuracy', 'macro avg' and 'weighted avg' (see classification_report). Labels of other tasks and
--   labels of messages not in `messages` are ignored; a message labelled twice for a task counts twice.
--
-- Inputs: messages, labels.
-- Outputs: channel, week, task, reviewed (labelled messages), label, precision, recall, f1, support.
CREATE OR REPLACE VIEW model_quality AS
WITH scored AS (
    SELECT
        m.channel,
        date_trunc('week', m.ts) AS week,
        l.task,
        l.label AS actual,
        CASE l.task
            WHEN 'intent' THEN intent(m.text)
            WHEN 'sentiment' THEN sentiment_label(m.text)
            WHEN 'language' THEN language(m.text)
        END AS predicted
    FROM messages AS m
    JOIN labels AS l ON l.message_id = m.message_id
    WHERE l.task IN ('intent', 'sentiment', 'language')
),
reports AS (
    SELECT channel, week, task, count(*) AS reviewed, classification_report(predicted, actual) AS report
    FROM scored
    GROUP BY channel, week, task
),
rows AS (
    SELECT channel, week, task, reviewed, unnest(report) AS r
    FROM reports
)
SELECT
    channel,
    week,
    task,
    reviewed,
    r['label'] AS label,
    r['precision'] AS precision,
    r['recall'] AS recall,
    r['f1'] AS f1,
    r['support'] AS support
FROM rows;
