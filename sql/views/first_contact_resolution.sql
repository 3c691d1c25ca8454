-- first_contact_resolution: first-contact resolution (FCR) by channel and week.
--
-- Definition
--   A first contact is a conversation that is not a repeat contact (see conversations). It is resolved on
--   first contact when the same customer does not come back about the same opening intent within
--   `colloquy.analytics.fcr_window_days` days (default 7; SET it to change every view at once).
--   fcr_rate = resolved_first_contacts / decided_first_contacts, where the decided ones exclude the
--   first contacts whose window is still open at the end of the archive (pending).
--
-- Inputs: conversations.
-- Outputs: channel, week, conversations, first_contacts, decided_first_contacts, resolved_first_contacts,
--   pending, repeat_contacts, fcr_rate (NULL when nothing is decided yet).
CREATE OR REPLACE VIEW first_contact_resolution AS
SELECT
    channel,
    week,
    count(*) AS conversations,
    count(*) FILTER (WHERE NOT repeat_contact) AS first_contacts,
    count(*) FILTER (WHERE NOT repeat_contact AND resolved IS NOT NULL) AS decided_first_contacts,
    count(*) FILTER (WHERE NOT repeat_contact AND resolved) AS resolved_first_contacts,
    count(*) FILTER (WHERE NOT repeat_contact AND resolved IS NULL) AS pending,
    count(*) FILTER (WHERE repeat_contact) AS repeat_contacts,
    CAST(count(*) FILTER (WHERE NOT repeat_contact AND resolved) AS DOUBLE)
        / nullif(count(*) FILTER (WHERE NOT repeat_contact AND resolved IS NOT NULL), 0) AS fcr_rate
FROM conversations
GROUP BY channel, week;
