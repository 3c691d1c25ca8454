//! The demo archive: twelve weeks of a fictional shop's ("Acme") customer conversations on WhatsApp,
//! Slack, web chat and SMS, each written in that channel's native export format. In the last four weeks
//! an incident hits delivery tracking: WhatsApp conversations about tracking and delivery grow in number
//! and turn negative. The analytics should find it.
//!
//! The generator is deterministic for a seed. Times are the shop's local time, Europe/Berlin.

mod rng;
mod text;
mod writers;

use std::path::Path;

use chrono::{Duration, NaiveDate, NaiveDateTime};

use rng::Rng;
use text::*;

pub use writers::write_archive;

/// The OPTIONS the demo archive is meant to be read with.
pub const DEMO_OPTIONS: &[(&str, &str)] = &[
    ("timezone", "Europe/Berlin"),
    ("agents", "*| Acme Support,*(Acme)"),
    ("bots", "Acme Bot"),
];

/// First day of the demo period (a Monday) and its length.
pub fn period_start() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 5).expect("valid date")
}
pub const PERIOD_DAYS: i64 = 84;
/// The incident starts four weeks before the end.
pub fn incident_start() -> NaiveDate {
    period_start() + Duration::days(PERIOD_DAYS - 28)
}

/// The incident's first moment, midnight in the shop's time zone (Europe/Berlin), in UTC.
pub fn incident_start_utc() -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    let midnight = incident_start().and_hms_opt(0, 0, 0).unwrap_or_default();
    chrono_tz::Europe::Berlin
        .from_local_datetime(&midnight)
        .earliest()
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(|| midnight.and_utc())
}

#[derive(Debug, Clone, Copy)]
pub struct DemoConfig {
    pub conversations: usize,
    pub seed: u64,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            conversations: 3000,
            seed: 42,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    Whatsapp,
    Slack,
    Webchat,
    Sms,
}

const CHANNELS: &[(Channel, f64)] = &[
    (Channel::Whatsapp, 0.35),
    (Channel::Slack, 0.10),
    (Channel::Webchat, 0.35),
    (Channel::Sms, 0.20),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Customer,
    Agent,
    Bot,
    System,
}

#[derive(Debug, Clone)]
pub struct Customer {
    pub id: usize,
    pub name: String,
    pub phone: String,
    pub lang: &'static str,
    /// Writes dates month-first with a 12-hour clock (US phone settings).
    pub us_locale: bool,
    /// Exports from an iPhone (bracketed lines) rather than Android.
    pub ios: bool,
    /// Shows up in WhatsApp as a bare number (not saved as a contact).
    pub shown_as_number: bool,
}

#[derive(Debug, Clone)]
pub struct Msg {
    /// Local (Europe/Berlin) wall-clock time.
    pub ts: NaiveDateTime,
    pub role: Role,
    /// Agent first name, when the sender is an agent.
    pub agent: Option<&'static str>,
    pub text: Option<String>,
    pub attachment: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Conversation {
    pub id: usize,
    pub channel: Channel,
    pub customer: usize,
    pub intent: &'static str,
    pub msgs: Vec<Msg>,
}

#[derive(Debug, Default, Clone)]
pub struct Demo {
    pub customers: Vec<Customer>,
    pub conversations: Vec<Conversation>,
}

impl Demo {
    pub fn messages(&self) -> usize {
        self.conversations.iter().map(|c| c.msgs.len()).sum()
    }
}

/// Generates the conversations (in memory) for a configuration.
pub fn generate(cfg: DemoConfig) -> Demo {
    let mut rng = Rng::new(cfg.seed);
    let start = period_start().and_hms_opt(0, 0, 0).expect("midnight");
    let incident = incident_start().and_hms_opt(0, 0, 0).expect("midnight");

    // Start times, sorted, weighted towards business hours and weekdays.
    let mut starts: Vec<NaiveDateTime> = (0..cfg.conversations)
        .map(|_| {
            let day = rng.below(PERIOD_DAYS as usize) as i64;
            let hour_w = [
                0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.5, 1.2, 2.5, 3.0, 3.0, 2.8, 2.5, 2.8, 3.0, 2.8,
                2.5, 2.2, 2.0, 1.8, 1.6, 1.2, 0.8, 0.4,
            ];
            let hour = rng.weighted(&hour_w) as i64;
            start
                + Duration::days(day)
                + Duration::hours(hour)
                + Duration::seconds(rng.below(3600) as i64)
        })
        .collect();
    starts.sort();

    let mut demo = Demo::default();
    let mut recent: Vec<(NaiveDateTime, Channel, usize, &'static str)> = Vec::new();
    for (id, t0) in starts.into_iter().enumerate() {
        let in_incident = t0 >= incident;
        let channel = CHANNELS[rng.weighted(&CHANNELS.iter().map(|c| c.1).collect::<Vec<_>>())].0;
        // A repeat contact: the same customer about the same thing within a week, because it was not solved.
        let repeat = rng.chance(0.22).then(|| {
            recent
                .iter()
                .rev()
                .take(400)
                .filter(|(t, c, _, _)| {
                    *c == channel && t0 - *t < Duration::days(7) && t0 - *t > Duration::hours(6)
                })
                .map(|(_, _, cust, intent)| (*cust, *intent))
                .next()
        });
        let (customer, intent) = match repeat.flatten() {
            Some(r) => r,
            None => {
                let cust = new_customer(&mut rng, demo.customers.len());
                demo.customers.push(cust);
                let mut weights: Vec<f64> = INTENTS.iter().map(|i| i.1).collect();
                if in_incident && channel == Channel::Whatsapp {
                    weights[0] *= 2.5; // track_order
                    weights[1] *= 2.0; // delivery
                }
                (demo.customers.len() - 1, INTENTS[rng.weighted(&weights)].0)
            }
        };
        recent.push((t0, channel, customer, intent));
        if recent.len() > 2000 {
            recent.drain(..1000);
        }
        let angry = in_incident
            && channel == Channel::Whatsapp
            && matches!(intent, "track_order" | "delivery")
            && rng.chance(0.8);
        let msgs = conversation(
            &mut rng,
            &demo.customers[customer],
            channel,
            intent,
            t0,
            angry,
            id,
        );
        demo.conversations.push(Conversation {
            id,
            channel,
            customer,
            intent,
            msgs,
        });
    }
    demo
}

fn new_customer(rng: &mut Rng, id: usize) -> Customer {
    let lang = LANGUAGES[rng.weighted(&LANGUAGES.iter().map(|l| l.1).collect::<Vec<_>>())].0;
    // Names are unique (chats are named after the contact, and two chats with one name would collide).
    let (nf, nl) = (FIRST_NAMES.len(), LAST_NAMES.len());
    let first = FIRST_NAMES[(id * 7 + id / nf) % nf];
    let last = LAST_NAMES[(id / nf) % nl];
    let name = match id / (nf * nl) {
        0 => format!("{first} {last}"),
        k if k <= 26 => format!("{first} {}. {last}", (b'A' + (k - 1) as u8) as char),
        k => format!("{first} {last} {k}"),
    };
    let cc = match lang {
        "es" => "+34",
        "pt" => "+351",
        "fr" => "+33",
        "de" => "+49",
        _ => {
            if rng.chance(0.5) {
                "+1"
            } else {
                "+44"
            }
        }
    };
    // Unique per customer, like the names: the first six digits encode the id.
    let phone = format!(
        "{cc} {:03} {:03} {:03}",
        100 + id % 900,
        (id / 900) % 1000,
        rng.below(1000)
    );
    Customer {
        id,
        us_locale: cc == "+1",
        ios: rng.chance(0.4),
        shown_as_number: rng.chance(0.15),
        name,
        phone,
        lang,
    }
}

struct Fill {
    order: String,
    item: &'static str,
    amount: String,
    days: usize,
    city: &'static str,
    agent: &'static str,
}

impl Fill {
    fn apply(&self, template: &str) -> String {
        template
            .replace("{o}", &self.order)
            .replace("{i}", self.item)
            .replace("{a}", &self.amount)
            .replace("{d}", &self.days.to_string())
            .replace("{c}", self.city)
            .replace("{n}", self.agent)
    }
}

fn conversation(
    rng: &mut Rng,
    cust: &Customer,
    channel: Channel,
    intent: &'static str,
    t0: NaiveDateTime,
    is_angry: bool,
    id: usize,
) -> Vec<Msg> {
    let angry_now = is_angry;
    let lang = cust.lang;
    let f = Fill {
        order: format!("A{:05}", (id * 7919 + 10007) % 100_000),
        item: rng.pick(ITEMS),
        amount: format!("€{}.{:02}", 10 + rng.below(190), rng.below(100)),
        days: 2 + rng.below(8),
        city: rng.pick(CITIES),
        agent: rng.pick(AGENTS),
    };
    let mut t = t0;
    let mut out = Vec::new();
    let mut push =
        |t: NaiveDateTime, role: Role, text: Option<String>, attachment: Option<String>| {
            out.push(Msg {
                ts: t,
                role,
                agent: (role == Role::Agent).then_some(f.agent),
                text,
                attachment,
            });
        };
    let secs = |rng: &mut Rng, mean: f64| Duration::seconds(1 + rng.exp(mean) as i64);

    // Opening.
    let opener = if angry_now {
        f.apply(rng.pick(angry(lang)))
    } else {
        f.apply(rng.pick(openers(lang, intent)))
    };
    if rng.chance(0.3) {
        push(
            t,
            Role::Customer,
            Some(rng.pick(greeting(lang)).to_string()),
            None,
        );
        t += secs(rng, 20.0);
    }
    let opener = if channel == Channel::Whatsapp && rng.chance(0.08) {
        format!("{opener}\n{}", f.apply("Order {o}, placed {d} days ago"))
    } else {
        opener
    };
    push(t, Role::Customer, Some(opener), None);
    if matches!(intent, "return" | "complaint" | "delivery")
        && channel != Channel::Sms
        && rng.chance(0.25)
    {
        t += secs(rng, 30.0);
        push(t, Role::Customer, None, Some("photo".to_string()));
    }

    // Bot first on WhatsApp and web chat.
    if matches!(channel, Channel::Whatsapp | Channel::Webchat) {
        t += secs(rng, 3.0);
        push(t, Role::Bot, Some(bot_greeting(lang).to_string()), None);
        if matches!(intent, "track_order" | "delivery") {
            t += secs(rng, 2.0);
            push(t, Role::Bot, Some(bot_answer(lang).to_string()), None);
            t += secs(rng, 40.0);
            if !angry_now && rng.chance(0.35) {
                push(
                    t,
                    Role::Customer,
                    Some(rng.pick(follow_up(lang, 1)).to_string()),
                    None,
                );
                return out;
            }
            push(
                t,
                Role::Customer,
                Some(rng.pick(customer_no(lang)).to_string()),
                None,
            );
        }
        t += secs(rng, 2.0);
        push(t, Role::Bot, Some(bot_handoff(lang).to_string()), None);
        t += secs(rng, if angry_now { 1500.0 } else { 180.0 });
    } else {
        t += secs(
            rng,
            if channel == Channel::Sms {
                1200.0
            } else {
                600.0
            },
        );
    }

    // Agent conversation.
    push(
        t,
        Role::Agent,
        Some(f.apply(rng.pick(agent_reply(lang, intent)))),
        None,
    );
    t += secs(rng, 90.0);
    let mood: i8 = if angry_now {
        if rng.chance(0.75) { -1 } else { 0 }
    } else {
        [1, 1, 1, 1, 1, 1, 0, 0, 0, -1][rng.below(10)]
    };
    push(
        t,
        Role::Customer,
        Some(rng.pick(follow_up(lang, mood)).to_string()),
        None,
    );
    if mood < 0 {
        t += secs(rng, if angry_now { 900.0 } else { 240.0 });
        push(
            t,
            Role::Agent,
            Some(f.apply(rng.pick(agent_reply(lang, "complaint")))),
            None,
        );
        t += secs(rng, 120.0);
        let again: i8 = if angry_now && rng.chance(0.6) { -1 } else { 0 };
        push(
            t,
            Role::Customer,
            Some(rng.pick(follow_up(lang, again)).to_string()),
            None,
        );
    }
    if rng.chance(0.7) {
        t += secs(rng, 60.0);
        push(
            t,
            Role::Agent,
            Some(rng.pick(agent_closing(lang)).to_string()),
            None,
        );
    }
    if channel == Channel::Webchat {
        t += Duration::seconds(5);
        push(
            t,
            Role::System,
            Some("Conversation closed".to_string()),
            None,
        );
    }
    out
}

/// Generates and writes the archive under `out`; returns the in-memory demo for reporting.
pub fn generate_to(out: &Path, cfg: DemoConfig) -> std::io::Result<(Demo, writers::WriteStats)> {
    let demo = generate(cfg);
    let stats = write_archive(&demo, out)?;
    Ok((demo, stats))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_incident_starts_at_midnight_in_berlin() {
        // 2 March 2026 is winter time there: UTC+1.
        assert_eq!(
            super::incident_start_utc().to_rfc3339(),
            "2026-03-01T23:00:00+00:00"
        );
    }
}
