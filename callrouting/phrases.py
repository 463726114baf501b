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
    "menu_key": "Press {digit}.",
    "key_star": "star",
    "key_hash": "hash",
    "no_choice": "Sorry, we did not get your choice. We will put you through to {label}.",
    "no_choice_voicemail": "Sorry, we did not get your choice. Please leave us a message.",
    "pin_prompt": "Please enter your PIN, then press the hash key.",
    "pin_wrong": "Sorry, that PIN is not valid.",
    "pin_refused": "Sorry, that PIN is not valid. Goodbye.",
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
        "menu_key": "Drücken Sie die {digit}.",
        "key_star": "Stern",
        "key_hash": "Raute",
        "no_choice": "Wir haben Ihre Auswahl leider nicht erkannt. Wir verbinden Sie mit {label}.",
        "no_choice_voicemail": "Wir haben Ihre Auswahl leider nicht erkannt. Bitte hinterlassen Sie uns eine Nachricht.",
        "pin_prompt": "Bitte geben Sie Ihre PIN ein und drücken Sie dann die Rautetaste.",
        "pin_wrong": "Diese PIN ist leider nicht gültig.",
        "pin_refused": "Diese PIN ist leider nicht gültig. Auf Wiederhören.",
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
        "menu_key": "Appuyez sur {digit}.",
        "key_star": "étoile",
        "key_hash": "dièse",
        "no_choice": "Nous n'avons pas compris votre choix. Nous vous mettons en relation avec {label}.",
        "no_choice_voicemail": "Nous n'avons pas compris votre choix. Veuillez nous laisser un message.",
        "pin_prompt": "Veuillez saisir votre code PIN, puis appuyer sur la touche dièse.",
        "pin_wrong": "Désolé, ce code PIN n'est pas valide.",
        "pin_refused": "Désolé, ce code PIN n'est pas valide. Au revoir.",
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
        "menu_key": "Pulse {digit}.",
        "key_star": "asterisco",
        "key_hash": "almohadilla",
        "no_choice": "No hemos recibido su elección. Le pasamos con {label}.",
        "no_choice_voicemail": "No hemos recibido su elección. Por favor, déjenos un mensaje.",
        "pin_prompt": "Introduzca su PIN y pulse la tecla almohadilla.",
        "pin_wrong": "Lo sentimos, ese PIN no es válido.",
        "pin_refused": "Lo sentimos, ese PIN no es válido. Adiós.",
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
        "menu_key": "Druk op {digit}.",
        "key_star": "sterretje",
        "key_hash": "hekje",
        "no_choice": "We hebben uw keuze niet ontvangen. We verbinden u door met {label}.",
        "no_choice_voicemail": "We hebben uw keuze niet ontvangen. Spreek een bericht voor ons in.",
        "pin_prompt": "Voer uw pincode in en druk daarna op de hekje-toets.",
        "pin_wrong": "Helaas is die pincode niet geldig.",
        "pin_refused": "Helaas is die pincode niet geldig. Tot ziens.",
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
        "menu_key": "Premi {digit}.",
        "key_star": "asterisco",
        "key_hash": "cancelletto",
        "no_choice": "Non abbiamo ricevuto la tua scelta. Ti mettiamo in contatto con {label}.",
        "no_choice_voicemail": "Non abbiamo ricevuto la tua scelta. Lasciaci un messaggio.",
        "pin_prompt": "Inserisci il tuo PIN, poi premi il tasto cancelletto.",
        "pin_wrong": "Spiacenti, questo PIN non è valido.",
        "pin_refused": "Spiacenti, questo PIN non è valido. Arrivederci.",
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
