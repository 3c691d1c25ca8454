//! Message templates, written for this demo. Placeholders: {o} order number, {i} item, {a} amount,
//! {d} a number of days, {c} a city, {n} the agent's first name.

/// Languages of the demo's customers, with their share of customers.
pub const LANGUAGES: &[(&str, f64)] = &[
    ("en", 0.55),
    ("es", 0.15),
    ("pt", 0.10),
    ("fr", 0.10),
    ("de", 0.10),
];

/// Intents of opening requests, with their base share of conversations.
pub const INTENTS: &[(&str, f64)] = &[
    ("track_order", 0.20),
    ("delivery", 0.10),
    ("shipping_address", 0.05),
    ("place_order", 0.05),
    ("change_order", 0.05),
    ("cancel_order", 0.07),
    ("billing", 0.07),
    ("payment", 0.06),
    ("refund", 0.09),
    ("return", 0.08),
    ("account", 0.07),
    ("complaint", 0.04),
    ("feedback", 0.03),
    ("human_agent", 0.04),
];

pub fn openers(lang: &str, intent: &str) -> &'static [&'static str] {
    match (lang, intent) {
        ("en", "track_order") => &[
            "Hi, where is my order {o}?",
            "hello, can you tell me the status of order {o}",
            "Hey there! I ordered a {i} last week and the tracking page says nothing. Order {o}",
            "Could you check where my package is? Order number {o}",
            "my order {o} still shows 'processing', when will it ship??",
        ],
        ("en", "delivery") => &[
            "The courier says my {i} was delivered but I never got it",
            "Hi, my delivery was supposed to arrive yesterday and nothing came. Order {o}",
            "Can I choose a delivery time for order {o}? I'm at work until 6",
            "The driver left my parcel at the wrong door, order {o}",
        ],
        ("en", "shipping_address") => &[
            "I need to change the shipping address for order {o}, I moved to {c}",
            "Oops, I typed the wrong street on order {o}. Can you fix the address?",
        ],
        ("en", "place_order") => &[
            "Hi! I'd like to order two {i}s, do you ship to {c}?",
            "Is the {i} back in stock? I want to buy one",
            "How do I place an order for a business account?",
        ],
        ("en", "change_order") => &[
            "Can I add a second {i} to order {o} before it ships?",
            "I ordered the wrong size, can you change it on order {o}?",
        ],
        ("en", "cancel_order") => &[
            "Please cancel order {o}, I don't need it anymore",
            "I want to cancel my order {o} before it ships",
            "cancel {o} please, ordered twice by mistake",
        ],
        ("en", "billing") => &[
            "I was charged twice for order {o}, {a} each time",
            "Can I get an invoice with my company's VAT number for {o}?",
            "Why is there a {a} charge on my card from you?",
        ],
        ("en", "payment") => &[
            "My card keeps getting declined at checkout",
            "Do you accept PayPal or only cards?",
            "The payment page froze and I don't know if order {o} went through",
        ],
        ("en", "refund") => &[
            "I returned the {i} {d} days ago, when do I get my refund?",
            "Still waiting on my refund of {a} for order {o}",
            "How long does a refund take to reach my bank?",
        ],
        ("en", "return") => &[
            "How do I return a {i}? It doesn't fit",
            "I'd like to send back order {o}, can you send a return label?",
            "The {i} arrived broken, I want to return it",
        ],
        ("en", "account") => &[
            "I can't log in to my account, the reset email never arrives",
            "How do I delete my account?",
            "Please update the email address on my account",
        ],
        ("en", "complaint") => &[
            "This is the worst service I've had. Nobody answers my emails about {o}",
            "I'm really disappointed, the {i} stopped working after {d} days",
        ],
        ("en", "feedback") => &[
            "Just wanted to say the new app is great, ordering took a minute",
            "Suggestion: let us pick a delivery slot in the app",
        ],
        ("en", "human_agent") => &[
            "I want to talk to a real person please",
            "agent",
            "Can I speak to someone from your team? The bot doesn't get it",
        ],
        ("es", "track_order" | "delivery") => &[
            "Hola, ¿dónde está mi pedido {o}?",
            "Buenas, el seguimiento del pedido {o} no se actualiza desde hace {d} días",
            "¿Cuándo llega mi {i}? Pedido {o}",
        ],
        ("es", "cancel_order" | "change_order") => &[
            "Quiero cancelar el pedido {o}, por favor",
            "¿Puedo cambiar la talla en el pedido {o}?",
        ],
        ("es", "refund" | "return") => &[
            "Devolví el {i} hace {d} días y todavía no recibo el reembolso",
            "¿Cómo hago una devolución? El {i} llegó roto",
        ],
        ("es", _) => &[
            "Hola, tengo un problema con mi cuenta y con el pago del pedido {o}",
            "Buenas tardes, necesito ayuda con una factura de {a}",
            "¿Me pueden ayudar? No puedo pagar con mi tarjeta",
        ],
        ("pt", "track_order" | "delivery") => &[
            "Olá, onde está a minha encomenda {o}?",
            "Boa tarde, o rastreio do pedido {o} não muda há {d} dias",
            "Quando chega o meu {i}? Pedido {o}",
        ],
        ("pt", "refund" | "return" | "cancel_order") => &[
            "Quero cancelar o pedido {o}, por favor",
            "Devolvi o {i} há {d} dias e ainda não recebi o reembolso",
        ],
        ("pt", _) => &[
            "Olá, preciso de ajuda com a fatura de {a}",
            "Não consigo entrar na minha conta, podem ajudar?",
        ],
        ("fr", "track_order" | "delivery") => &[
            "Bonjour, où en est ma commande {o} ?",
            "Bonjour, le suivi de la commande {o} ne bouge plus depuis {d} jours",
            "Quand est-ce que mon {i} sera livré ? Commande {o}",
        ],
        ("fr", "refund" | "return" | "cancel_order") => &[
            "Je voudrais annuler la commande {o} s'il vous plaît",
            "J'ai renvoyé le {i} il y a {d} jours, toujours pas de remboursement",
        ],
        ("fr", _) => &[
            "Bonjour, j'ai été débité deux fois de {a}",
            "Je n'arrive pas à me connecter à mon compte",
        ],
        ("de", "track_order" | "delivery") => &[
            "Hallo, wo ist meine Bestellung {o}?",
            "Guten Tag, die Sendungsverfolgung für {o} zeigt seit {d} Tagen nichts Neues",
            "Wann kommt mein {i}? Bestellung {o}",
        ],
        ("de", "refund" | "return" | "cancel_order") => &[
            "Bitte stornieren Sie die Bestellung {o}",
            "Ich habe den {i} vor {d} Tagen zurückgeschickt und noch keine Erstattung bekommen",
        ],
        ("de", _) => &[
            "Hallo, mir wurden {a} doppelt abgebucht",
            "Ich kann mich nicht in mein Konto einloggen",
        ],
        _ => &["Hello, I need help with order {o}"],
    }
}

/// What a customer writes when the incident has made tracking and delivery go wrong.
pub fn angry(lang: &str) -> &'static [&'static str] {
    match lang {
        "es" => &[
            "Esto es inaceptable, llevo {d} días esperando el pedido {o} y nadie me responde",
            "¡Otra vez sin noticias de mi paquete! Estoy harto, el seguimiento no funciona",
            "Pésimo servicio, quiero mi dinero de vuelta",
        ],
        "pt" => &[
            "Isto é inaceitável, espero pela encomenda {o} há {d} dias e ninguém responde",
            "Outra vez sem notícias do meu pacote! Péssimo serviço",
        ],
        "fr" => &[
            "C'est inadmissible, j'attends la commande {o} depuis {d} jours et personne ne répond",
            "Encore aucune nouvelle de mon colis ! Service lamentable",
        ],
        "de" => &[
            "Das ist unmöglich, ich warte seit {d} Tagen auf {o} und niemand antwortet",
            "Schon wieder keine Info zu meinem Paket! Katastrophaler Service",
        ],
        _ => &[
            "This is ridiculous. {d} days and still no sign of order {o}, and the tracking link is broken",
            "Third time asking: WHERE IS MY PACKAGE?? Terrible service",
            "The tracking has said 'in transit' for a week. I'm furious, I want a refund",
            "Nobody can tell me where my order is. Awful, I will never order again",
            "Seriously?! The courier lost my {i} again. Worst experience ever",
        ],
    }
}

/// Customer replies after the agent has answered: pleased, neutral, or unhappy.
pub fn follow_up(lang: &str, mood: i8) -> &'static [&'static str] {
    match (lang, mood) {
        ("en", 1) => &[
            "Great, thank you so much!",
            "Perfect, that was quick 🙂",
            "Thanks, really helpful",
            "Awesome, appreciate it!",
        ],
        ("en", 0) => &[
            "Ok",
            "ok, I'll wait then",
            "Alright. Anything else I need to do?",
            "Got it",
        ],
        ("en", _) => &[
            "That doesn't help at all",
            "You said that last week too. Still nothing",
            "This is really frustrating",
            "Not good enough, I'm very unhappy",
        ],
        ("es", 1) => &["¡Genial, muchas gracias!", "Perfecto, gracias por la ayuda"],
        ("es", 0) => &["Vale", "De acuerdo, espero entonces"],
        ("es", _) => &["Eso no me ayuda nada", "Es muy frustrante"],
        ("pt", 1) => &["Ótimo, muito obrigado!", "Perfeito, obrigada pela ajuda"],
        ("pt", 0) => &["Ok", "Certo, vou aguardar"],
        ("pt", _) => &["Isso não ajuda nada", "Que frustrante"],
        ("fr", 1) => &["Super, merci beaucoup !", "Parfait, merci pour votre aide"],
        ("fr", 0) => &["D'accord", "Ok, j'attends alors"],
        ("fr", _) => &["Ça ne m'aide pas du tout", "C'est vraiment pénible"],
        ("de", 1) => &["Super, vielen Dank!", "Perfekt, danke für die Hilfe"],
        ("de", 0) => &["Ok", "Alles klar, dann warte ich"],
        ("de", _) => &[
            "Das hilft mir überhaupt nicht",
            "Das ist wirklich ärgerlich",
        ],
        _ => &["Ok"],
    }
}

pub fn greeting(lang: &str) -> &'static [&'static str] {
    match lang {
        "es" => &["Hola", "Buenos días"],
        "pt" => &["Olá", "Bom dia"],
        "fr" => &["Bonjour", "Salut"],
        "de" => &["Hallo", "Guten Morgen"],
        _ => &["Hi", "Hello", "Hey", "Good morning"],
    }
}

/// Agent replies, by language (agents answer in the customer's language).
pub fn agent_reply(lang: &str, intent: &str) -> &'static [&'static str] {
    match (lang, intent) {
        ("en", "track_order" | "delivery") => &[
            "Hi, this is {n}. I've checked order {o}: it left our warehouse and should arrive within {d} days.",
            "Thanks for waiting! Order {o} is with the courier, here's the tracking link: https://track.acme.test/{o}",
            "I'm sorry about the delay. I've opened a trace with the courier for {o} and will update you tomorrow.",
        ],
        ("en", "refund" | "return") => &[
            "Hi, {n} here. Your refund of {a} for {o} was issued today; banks take 3-5 business days.",
            "I've emailed you a prepaid return label for {o}. Once we receive it, the refund goes out in 48 hours.",
        ],
        ("en", "cancel_order" | "change_order" | "shipping_address") => &[
            "Done! Order {o} has been updated. You'll get a confirmation email shortly.",
            "I caught it before it shipped, order {o} is changed. Anything else?",
        ],
        ("en", "billing" | "payment") => &[
            "I see the double charge of {a} on {o}; the second one is a pre-authorisation and will drop off in 2 days.",
            "We accept cards, PayPal and bank transfer. Could you try again and tell me the error you see?",
        ],
        ("en", _) => &[
            "Hi, {n} from Acme here, happy to help. Let me look into this for you.",
            "Thanks for reaching out! I've sorted that out on our side.",
            "I understand, and I'm sorry for the trouble. I've escalated this to our team lead.",
        ],
        ("es", _) => &[
            "Hola, soy {n}. Ya revisé el pedido {o}, llegará en {d} días.",
            "Disculpa las molestias, ya lo hemos solucionado. ¿Algo más?",
        ],
        ("pt", _) => &[
            "Olá, sou {n}. Verifiquei o pedido {o}, chega em {d} dias.",
            "Desculpe o incómodo, já resolvemos. Mais alguma coisa?",
        ],
        ("fr", _) => &[
            "Bonjour, ici {n}. J'ai vérifié la commande {o}, elle arrive sous {d} jours.",
            "Désolé pour le désagrément, c'est réglé. Autre chose ?",
        ],
        ("de", _) => &[
            "Hallo, hier ist {n}. Ich habe {o} geprüft, sie kommt in {d} Tagen an.",
            "Entschuldigen Sie die Unannehmlichkeiten, das ist erledigt. Noch etwas?",
        ],
        _ => &["Let me check that for you."],
    }
}

pub fn agent_closing(lang: &str) -> &'static [&'static str] {
    match lang {
        "es" => &["¡Gracias por escribirnos! Que tengas un buen día."],
        "pt" => &["Obrigado pelo contacto! Tenha um bom dia."],
        "fr" => &["Merci de nous avoir contactés ! Bonne journée."],
        "de" => &["Danke für Ihre Nachricht! Einen schönen Tag noch."],
        _ => &[
            "Glad I could help! Have a great day.",
            "You're welcome. Anything else, just message us here.",
            "Happy to help, take care!",
        ],
    }
}

pub fn bot_greeting(lang: &str) -> &'static str {
    match lang {
        "es" => "¡Hola! Soy el asistente virtual de Acme. ¿En qué puedo ayudarte?",
        "pt" => "Olá! Sou o assistente virtual da Acme. Como posso ajudar?",
        "fr" => "Bonjour ! Je suis l'assistant virtuel d'Acme. Comment puis-je vous aider ?",
        "de" => "Hallo! Ich bin der virtuelle Assistent von Acme. Wie kann ich helfen?",
        _ => "Hi! I'm Acme's virtual assistant. How can I help you today?",
    }
}

pub fn bot_answer(lang: &str) -> &'static str {
    match lang {
        "es" => "Puedes ver el estado de tu pedido en https://track.acme.test. ¿Te ha servido?",
        "pt" => "Pode ver o estado do pedido em https://track.acme.test. Isto ajudou?",
        "fr" => {
            "Vous pouvez suivre votre commande sur https://track.acme.test. Cela vous aide-t-il ?"
        }
        "de" => {
            "Den Status Ihrer Bestellung sehen Sie unter https://track.acme.test. Hat das geholfen?"
        }
        _ => {
            "You can see your order status at https://track.acme.test. Did that answer your question?"
        }
    }
}

pub fn bot_handoff(lang: &str) -> &'static str {
    match lang {
        "es" => "Te paso con un agente, un momento por favor.",
        "pt" => "Vou transferir para um agente, um momento por favor.",
        "fr" => "Je vous mets en relation avec un conseiller, un instant.",
        "de" => "Ich verbinde Sie mit einem Mitarbeiter, einen Moment bitte.",
        _ => "Let me connect you with an agent. One moment please.",
    }
}

pub fn customer_no(lang: &str) -> &'static [&'static str] {
    match lang {
        "es" => &["No, quiero hablar con una persona"],
        "pt" => &["Não, quero falar com uma pessoa"],
        "fr" => &["Non, je veux parler à quelqu'un"],
        "de" => &["Nein, ich möchte mit einem Menschen sprechen"],
        _ => &[
            "No",
            "no, I need a human",
            "Not really. Can I talk to someone?",
        ],
    }
}

pub const ITEMS: &[&str] = &[
    "jacket",
    "blender",
    "lamp",
    "backpack",
    "coffee grinder",
    "headphones",
    "desk chair",
    "kettle",
    "sneakers",
    "phone case",
];
pub const CITIES: &[&str] = &[
    "Lisbon", "Madrid", "Lyon", "Hamburg", "Austin", "Porto", "Seville", "Leeds", "Munich",
    "Toronto",
];
pub const FIRST_NAMES: &[&str] = &[
    "Ana", "Bruno", "Carla", "David", "Elena", "Felix", "Grace", "Hugo", "Ines", "Jonas", "Kara",
    "Luis", "Mia", "Nuno", "Olga", "Paul", "Quinn", "Rosa", "Sam", "Tara", "Umar", "Vera", "Will",
    "Xenia", "Yusuf", "Zoe", "Amir", "Beatriz", "Chloé", "Dieter", "Emma", "Fatima", "Giulia",
    "Hannah", "Ivan", "Julia", "Kenji", "Léa", "Marta", "Noah",
];
pub const LAST_NAMES: &[&str] = &[
    "Silva",
    "Garcia",
    "Martin",
    "Müller",
    "Smith",
    "Rossi",
    "Dubois",
    "Santos",
    "Fernández",
    "Schmidt",
    "Brown",
    "Costa",
    "Lefèvre",
    "Weber",
    "Jones",
    "Moreau",
    "Pereira",
    "López",
    "Wagner",
    "Taylor",
];
pub const AGENTS: &[&str] = &[
    "Maria", "Tom", "Sofia", "Jan", "Lucas", "Aisha", "Pedro", "Claire",
];
