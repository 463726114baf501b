"""What callers and agents hear, per Vonage TTS language.

Each language has the same keys; `phrase(language, key, **values)` falls back to American English for a
language or key that is missing, so a caller always hears something.
"""

DEFAULT_LANGUAGE = "en-US"

LANGUAGE_CHOICES = [
    ("en-US", "English (US)"),
    ("en-GB", "English (UK)"),
    ("de-DE", "German"),
    ("fr-FR", "French"),
    ("es-ES", "Spanish"),
    ("nl-NL", "Dutch"),
    ("it-IT", "Italian"),
]

_EN = {
    "menu_item": "Press {digit} or say {label} for {label}.",
    "connecting": "Connecting you, please hold.",
    "nobody_available": (
        "Sorry, no one is available to take your call right now. We have been notified and will get back to you. "
        "Goodbye."
    ),
    "voicemail_prompt": (
        "No one is available to take your call right now. Please leave a message after the tone "
        "and press the hash key when you are done."
    ),
    "agent_whisper": "{name}: {label} call from {caller}. Press 1 to accept, 2 to decline.",
    "unknown_caller": "an unknown number",
    "call_taken": "This call has already been taken by someone else. Goodbye.",
    "caller_gone": "The caller has already hung up. Goodbye.",
    "declined": "Goodbye.",
    "voicemail_thanks": "Thank you for your message. Goodbye.",
    "unknown_number": "Sorry, this number is not in service. Goodbye.",
    "error": "Sorry, we are having technical difficulties. Please hold.",
    "error_goodbye": "Sorry, we are having technical difficulties. Please call again later. Goodbye.",
}

PHRASES = {
    "en-US": _EN,
    "en-GB": _EN,
    "de-DE": {
        "menu_item": "Drücken Sie die {digit} oder sagen Sie {label} für {label}.",
        "connecting": "Sie werden verbunden, bitte bleiben Sie dran.",
        "nobody_available": (
            "Leider ist gerade niemand erreichbar. Wir wurden benachrichtigt und melden uns bei Ihnen. "
            "Auf Wiederhören."
        ),
        "voicemail_prompt": (
            "Leider ist gerade niemand erreichbar. Bitte hinterlassen Sie nach dem Signalton eine Nachricht "
            "und drücken Sie zum Abschluss die Rautetaste."
        ),
        "agent_whisper": "{name}: {label}, Anruf von {caller}. Drücken Sie 1 zum Annehmen, 2 zum Ablehnen.",
        "unknown_caller": "einer unbekannten Nummer",
        "call_taken": "Dieser Anruf wurde bereits angenommen. Auf Wiederhören.",
        "caller_gone": "Der Anrufer hat bereits aufgelegt. Auf Wiederhören.",
        "declined": "Auf Wiederhören.",
        "voicemail_thanks": "Vielen Dank für Ihre Nachricht. Auf Wiederhören.",
        "unknown_number": "Diese Rufnummer ist leider nicht vergeben. Auf Wiederhören.",
        "error": "Leider gibt es eine technische Störung. Bitte bleiben Sie dran.",
        "error_goodbye": "Leider gibt es eine technische Störung. Bitte rufen Sie später wieder an. Auf Wiederhören.",
    },
    "fr-FR": {
        "menu_item": "Appuyez sur {digit} ou dites {label} pour {label}.",
        "connecting": "Nous vous mettons en relation, veuillez patienter.",
        "nobody_available": (
            "Désolé, personne n'est disponible pour le moment. Nous avons été prévenus et vous rappellerons. "
            "Au revoir."
        ),
        "voicemail_prompt": (
            "Personne n'est disponible pour le moment. Veuillez laisser un message après le bip "
            "et appuyer sur la touche dièse pour terminer."
        ),
        "agent_whisper": "{name} : appel {label} de {caller}. Appuyez sur 1 pour accepter, 2 pour refuser.",
        "unknown_caller": "un numéro inconnu",
        "call_taken": "Cet appel a déjà été pris par quelqu'un d'autre. Au revoir.",
        "caller_gone": "L'appelant a déjà raccroché. Au revoir.",
        "declined": "Au revoir.",
        "voicemail_thanks": "Merci pour votre message. Au revoir.",
        "unknown_number": "Désolé, ce numéro n'est pas en service. Au revoir.",
        "error": "Désolé, nous rencontrons un problème technique. Veuillez patienter.",
        "error_goodbye": "Désolé, nous rencontrons un problème technique. Veuillez rappeler plus tard. Au revoir.",
    },
    "es-ES": {
        "menu_item": "Pulse {digit} o diga {label} para {label}.",
        "connecting": "Le estamos conectando, por favor espere.",
        "nobody_available": (
            "Lo sentimos, ahora mismo no hay nadie disponible. Hemos recibido el aviso y le llamaremos. Adiós."
        ),
        "voicemail_prompt": (
            "Ahora mismo no hay nadie disponible. Deje un mensaje después de la señal "
            "y pulse la tecla almohadilla al terminar."
        ),
        "agent_whisper": "{name}: llamada de {label} desde {caller}. Pulse 1 para aceptar, 2 para rechazar.",
        "unknown_caller": "un número desconocido",
        "call_taken": "Otra persona ya ha atendido esta llamada. Adiós.",
        "caller_gone": "La persona que llamaba ya ha colgado. Adiós.",
        "declined": "Adiós.",
        "voicemail_thanks": "Gracias por su mensaje. Adiós.",
        "unknown_number": "Lo sentimos, este número no está en servicio. Adiós.",
        "error": "Lo sentimos, tenemos un problema técnico. Por favor, espere.",
        "error_goodbye": "Lo sentimos, tenemos un problema técnico. Vuelva a llamar más tarde. Adiós.",
    },
    "nl-NL": {
        "menu_item": "Druk op {digit} of zeg {label} voor {label}.",
        "connecting": "U wordt doorverbonden, een moment geduld alstublieft.",
        "nobody_available": (
            "Helaas is er op dit moment niemand bereikbaar. We zijn op de hoogte gebracht en nemen contact met u op. "
            "Tot ziens."
        ),
        "voicemail_prompt": (
            "Er is op dit moment niemand bereikbaar. Spreek na de toon een bericht in "
            "en druk op de hekje-toets als u klaar bent."
        ),
        "agent_whisper": "{name}: {label} oproep van {caller}. Druk op 1 om aan te nemen, 2 om te weigeren.",
        "unknown_caller": "een onbekend nummer",
        "call_taken": "Deze oproep is al door iemand anders aangenomen. Tot ziens.",
        "caller_gone": "De beller heeft al opgehangen. Tot ziens.",
        "declined": "Tot ziens.",
        "voicemail_thanks": "Bedankt voor uw bericht. Tot ziens.",
        "unknown_number": "Helaas is dit nummer niet in gebruik. Tot ziens.",
        "error": "Helaas is er een technische storing. Blijft u aan de lijn.",
        "error_goodbye": "Helaas is er een technische storing. Belt u later nog eens. Tot ziens.",
    },
    "it-IT": {
        "menu_item": "Premi {digit} o di' {label} per {label}.",
        "connecting": "Ti stiamo mettendo in contatto, resta in linea.",
        "nobody_available": (
            "Siamo spiacenti, al momento nessuno è disponibile. Siamo stati avvisati e ti ricontatteremo. "
            "Arrivederci."
        ),
        "voicemail_prompt": (
            "Al momento nessuno è disponibile. Lascia un messaggio dopo il segnale acustico "
            "e premi il tasto cancelletto quando hai finito."
        ),
        "agent_whisper": "{name}: chiamata {label} da {caller}. Premi 1 per accettare, 2 per rifiutare.",
        "unknown_caller": "un numero sconosciuto",
        "call_taken": "Questa chiamata è già stata presa da qualcun altro. Arrivederci.",
        "caller_gone": "Il chiamante ha già riattaccato. Arrivederci.",
        "declined": "Arrivederci.",
        "voicemail_thanks": "Grazie per il tuo messaggio. Arrivederci.",
        "unknown_number": "Siamo spiacenti, questo numero non è attivo. Arrivederci.",
        "error": "Siamo spiacenti, si è verificato un problema tecnico. Resta in linea.",
        "error_goodbye": "Siamo spiacenti, si è verificato un problema tecnico. Richiama più tardi. Arrivederci.",
    },
}

# Spoken digits, so "say one" or "eins" also chooses option 1 when the recogniser writes words.
DIGIT_WORDS = {
    "en": ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"],
    "de": ["null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun"],
    "fr": ["zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf"],
    "es": ["cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve"],
    "nl": ["nul", "een", "twee", "drie", "vier", "vijf", "zes", "zeven", "acht", "negen"],
    "it": ["zero", "uno", "due", "tre", "quattro", "cinque", "sei", "sette", "otto", "nove"],
}


def phrase(language, key, **values):
    """The text for KEY in LANGUAGE with VALUES filled in (American English when missing)."""
    table = PHRASES.get(language) or PHRASES[DEFAULT_LANGUAGE]
    template = table.get(key) or PHRASES[DEFAULT_LANGUAGE][key]
    return template.format(**values)


def digit_words(language):
    """Words for 0-9 in LANGUAGE's base language (English when unknown)."""
    return DIGIT_WORDS.get((language or "").split("-")[0].lower(), DIGIT_WORDS["en"])
