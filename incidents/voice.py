"""What notification calls say: a small phrase table and the NCCOs (plain dicts) of a notification call.

The call reads out the incident and asks for one key: 4 accepts, 6 resolves. The keypress comes back to
/incidents/voice/<token>/input, signed by Vonage; the token is the notification's unguessable token.
"""
from django.conf import settings
from django.urls import reverse

from .models import Language, Notification

ACCEPT_KEY = "4"
RESOLVE_KEY = "6"

PHRASES = {
    Language.EN_US: {
        "alert": "Alert for {account}. Incident {id}, {priority} priority: {summary}. Source: {source}.",
        "prompt": "Press 4 to accept, or 6 to resolve.",
        "accepted": "Incident {id} is accepted by you. Thank you.",
        "resolved": "Incident {id} is resolved. Goodbye.",
        "already_accepted": "Incident {id} was already accepted by {name}. Goodbye.",
        "already_resolved": "Incident {id} is already resolved. Goodbye.",
        "invalid": "Sorry, that was not a valid choice.",
        "goodbye": "Goodbye.",
        "unknown": "This alert is no longer available. Goodbye.",
        "error": "Sorry, something went wrong. Goodbye.",
        "high": "high",
        "low": "low",
        "message": "{account}: incident #{id} ({priority}): {summary}. Source: {source}. {url}",
        "subject": "[{account}] Incident #{id}: {summary}",
    },
    Language.DE_DE: {
        "alert": "Alarm für {account}. Vorfall {id}, Priorität {priority}: {summary}. Quelle: {source}.",
        "prompt": "Drücken Sie 4 zum Annehmen oder 6 zum Lösen.",
        "accepted": "Vorfall {id} ist von Ihnen angenommen. Danke.",
        "resolved": "Vorfall {id} ist gelöst. Auf Wiederhören.",
        "already_accepted": "Vorfall {id} wurde bereits von {name} angenommen. Auf Wiederhören.",
        "already_resolved": "Vorfall {id} ist bereits gelöst. Auf Wiederhören.",
        "invalid": "Das war leider keine gültige Auswahl.",
        "goodbye": "Auf Wiederhören.",
        "unknown": "Dieser Alarm ist nicht mehr verfügbar. Auf Wiederhören.",
        "error": "Leider ist ein Fehler aufgetreten. Auf Wiederhören.",
        "high": "hoch",
        "low": "niedrig",
        "message": "{account}: Vorfall #{id} ({priority}): {summary}. Quelle: {source}. {url}",
        "subject": "[{account}] Vorfall #{id}: {summary}",
    },
    Language.FR_FR: {
        "alert": "Alerte pour {account}. Incident {id}, priorité {priority} : {summary}. Source : {source}.",
        "prompt": "Appuyez sur 4 pour accepter, ou sur 6 pour résoudre.",
        "accepted": "L'incident {id} est accepté par vous. Merci.",
        "resolved": "L'incident {id} est résolu. Au revoir.",
        "already_accepted": "L'incident {id} a déjà été accepté par {name}. Au revoir.",
        "already_resolved": "L'incident {id} est déjà résolu. Au revoir.",
        "invalid": "Désolé, ce choix n'est pas valide.",
        "goodbye": "Au revoir.",
        "unknown": "Cette alerte n'est plus disponible. Au revoir.",
        "error": "Désolé, une erreur s'est produite. Au revoir.",
        "high": "haute",
        "low": "basse",
        "message": "{account} : incident #{id} ({priority}) : {summary}. Source : {source}. {url}",
        "subject": "[{account}] Incident #{id} : {summary}",
    },
    Language.ES_ES: {
        "alert": "Alerta para {account}. Incidente {id}, prioridad {priority}: {summary}. Origen: {source}.",
        "prompt": "Pulse 4 para aceptar, o 6 para resolver.",
        "accepted": "Ha aceptado el incidente {id}. Gracias.",
        "resolved": "El incidente {id} está resuelto. Adiós.",
        "already_accepted": "El incidente {id} ya fue aceptado por {name}. Adiós.",
        "already_resolved": "El incidente {id} ya está resuelto. Adiós.",
        "invalid": "Lo siento, esa opción no es válida.",
        "goodbye": "Adiós.",
        "unknown": "Esta alerta ya no está disponible. Adiós.",
        "error": "Lo siento, algo salió mal. Adiós.",
        "high": "alta",
        "low": "baja",
        "message": "{account}: incidente #{id} ({priority}): {summary}. Origen: {source}. {url}",
        "subject": "[{account}] Incidente #{id}: {summary}",
    },
    Language.NL_NL: {
        "alert": "Alarm voor {account}. Incident {id}, prioriteit {priority}: {summary}. Bron: {source}.",
        "prompt": "Druk op 4 om te accepteren, of op 6 om op te lossen.",
        "accepted": "Incident {id} is door u geaccepteerd. Dank u.",
        "resolved": "Incident {id} is opgelost. Tot ziens.",
        "already_accepted": "Incident {id} is al geaccepteerd door {name}. Tot ziens.",
        "already_resolved": "Incident {id} is al opgelost. Tot ziens.",
        "invalid": "Sorry, dat is geen geldige keuze.",
        "goodbye": "Tot ziens.",
        "unknown": "Dit alarm is niet meer beschikbaar. Tot ziens.",
        "error": "Sorry, er ging iets mis. Tot ziens.",
        "high": "hoog",
        "low": "laag",
        "message": "{account}: incident #{id} ({priority}): {summary}. Bron: {source}. {url}",
        "subject": "[{account}] Incident #{id}: {summary}",
    },
    Language.IT_IT: {
        "alert": "Allarme per {account}. Incidente {id}, priorità {priority}: {summary}. Origine: {source}.",
        "prompt": "Premi 4 per accettare, o 6 per risolvere.",
        "accepted": "Hai accettato l'incidente {id}. Grazie.",
        "resolved": "L'incidente {id} è risolto. Arrivederci.",
        "already_accepted": "L'incidente {id} è già stato accettato da {name}. Arrivederci.",
        "already_resolved": "L'incidente {id} è già risolto. Arrivederci.",
        "invalid": "Spiacente, scelta non valida.",
        "goodbye": "Arrivederci.",
        "unknown": "Questo allarme non è più disponibile. Arrivederci.",
        "error": "Spiacente, si è verificato un errore. Arrivederci.",
        "high": "alta",
        "low": "bassa",
        "message": "{account}: incidente #{id} ({priority}): {summary}. Origine: {source}. {url}",
        "subject": "[{account}] Incidente #{id}: {summary}",
    },
}


def phrases(language):
    """The phrase table for LANGUAGE (BCP-47); English for anything not in the table."""
    return PHRASES.get(language) or PHRASES[Language.EN_US]


def describe(incident, key, *, summary_chars=300, **extra):
    """Phrase KEY filled in for INCIDENT in the incident's language."""
    table = phrases(incident.language)
    return table[key].format(
        account=incident.account.name,
        id=incident.pk,
        priority=table.get(incident.priority, incident.priority),
        summary=incident.summary[:summary_chars],
        source=incident.alert_source.name,
        url=incident.get_public_url(),
        **extra,
    )


def talk(incident, text, *, barge_in=False):
    action = {"action": "talk", "text": text[:1500], "language": _language(incident)}
    if barge_in:
        action["bargeIn"] = True
    return action


def _language(incident):
    return incident.language if incident.language in PHRASES else Language.EN_US.value


def input_url(notification, *, repeat=False):
    url = settings.PUBLIC_BASE_URL + reverse("incidents:voice-input", args=[notification.token])
    return url + ("?repeat=1" if repeat else "")


def event_url(notification):
    return settings.PUBLIC_BASE_URL + reverse("incidents:voice-event", args=[notification.token])


def prompt(notification, *, repeat=False):
    """The key prompt: talk (interruptible by a key) and a one-digit input sent to the keypress webhook."""
    incident = notification.incident
    return [
        talk(incident, describe(incident, "prompt"), barge_in=True),
        {
            "action": "input",
            "type": ["dtmf"],
            "dtmf": {"maxDigits": 1, "timeOut": 10},
            "eventUrl": [input_url(notification, repeat=repeat)],
        },
    ]


def notification_call_ncco(notification):
    """The NCCO of a notification call: what happened, then the key prompt."""
    incident = notification.incident
    return [talk(incident, describe(incident, "alert"), barge_in=True), *prompt(notification)]


def keypress_reply_ncco(notification, result, *, repeat=False):
    """The NCCO answering a keypress with outcome RESULT (see services.answer_notification_keypress)."""
    if notification is None:
        return unknown_ncco()
    incident = notification.incident
    if result.outcome == "invalid":
        if repeat:
            return [talk(incident, describe(incident, "invalid") + " " + describe(incident, "goodbye"))]
        return [talk(incident, describe(incident, "invalid")), *prompt(notification, repeat=True)]
    extra = {"name": str(result.accepted_by)} if result.outcome == "already_accepted" else {}
    return [talk(incident, describe(incident, result.outcome, **extra))]


def unknown_ncco():
    return [{"action": "talk", "text": PHRASES[Language.EN_US]["unknown"], "language": Language.EN_US.value}]


def safe_ncco(request):
    """What a keypress webhook answers when the request cannot be trusted or parsed."""
    return [{"action": "talk", "text": PHRASES[Language.EN_US]["error"], "language": Language.EN_US.value}]


def notification_fallback_ncco(token):
    """What the person hears when their key press in the notification call with TOKEN could not be answered
    (Vonage called the fallback URL): the key prompt again while the incident is open, else goodbye."""
    notification = (
        Notification.objects.select_related("incident__alert_source", "incident__account")
        .filter(token=token, channel=Notification.Channel.VOICE)
        .first()
    )
    if notification is None:
        return unknown_ncco()
    incident = notification.incident
    if not incident.is_open:
        return [talk(incident, describe(incident, "goodbye"))]
    return prompt(notification, repeat=True)
