-- language_mix: the languages customers write in, by channel.
--
-- Definition
--   Customer messages with text, by language(text); 'und' (undetermined) where language() has no answer
--   (emoji only, too short). conversations = conversations whose language (see conversations) it is.
--   message_share = the language's messages / the channel's customer messages with text.
--
-- Inputs: conversation_messages, conversations.
-- Outputs: channel, language, messages, message_share, conversations.
CREATE OR REPLACE VIEW language_mix AS
WITH per_message AS (
    SELECT channel, coalesce(language(text), 'und') AS language, count(*) AS messages
    FROM conversation_messages
    WHERE sender_role = 'customer' AND text IS NOT NULL
    GROUP BY channel, coalesce(language(text), 'und')
),
per_conversation AS (
    SELECT channel, coalesce(language, 'und') AS language, count(*) AS conversations
    FROM conversations
    GROUP BY channel, coalesce(language, 'und')
)
SELECT
    m.channel,
    m.language,
    m.messages,
    CAST(m.messages AS DOUBLE) / sum(m.messages) OVER (PARTITION BY m.channel) AS message_share,
    coalesce(c.conversations, 0) AS conversations
FROM per_message AS m
LEFT JOIN per_conversation AS c ON c.channel = m.channel AND c.language = m.language;
