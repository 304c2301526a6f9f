"""Phone numbers, keyed by the number itself (E.164): bought (create) or imported (SIP)."""

from __future__ import annotations

from aioretell._validation import is_e164

from ..crud import Collection, register
from ..registry import ApiError, Reply, Request, handles
from ..state import JSON, EmulatorState

NUMBERS = register(
    Collection(
        "phone_numbers",
        "",
        "Phone number",
        get="getPhoneNumber",
        delete="deletePhoneNumber",
        list="listPhoneNumbers",
    )
)
_PROVIDER_TYPES = {"twilio": "retell-twilio", "telnyx": "retell-telnyx"}
_DEFAULT_AREA_CODE = 415
_TOLL_FREE_AREA_CODE = 800
#: Update fields that configure an imported number's SIP trunk.
_TRUNK_FIELDS = ("termination_uri", "auth_username", "transport")


def pretty(number: str) -> str | None:
    """``+1 (415) 555-0100`` for North American numbers; others have no pretty form here."""
    digits = number[2:]
    if number.startswith("+1") and len(digits) == 10:
        return f"+1 ({digits[:3]}) {digits[3:6]}-{digits[6:]}"
    return None


def _add(state: EmulatorState, number: str, body: JSON) -> JSON:
    record = NUMBERS.add(state, {**body, "phone_number_pretty": pretty(number)}, number)
    area = number[2:5] if number.startswith("+1") else None
    record.setdefault("area_code", int(area) if area and area.isdigit() else None)
    return record


def _new_number(state: EmulatorState, body: JSON) -> str:
    """A free number in the requested (or default) North American area code."""
    default = _TOLL_FREE_AREA_CODE if body.get("toll_free") else _DEFAULT_AREA_CODE
    area = body.get("area_code", default)
    taken = NUMBERS.records(state)
    for line in range(10_000):
        number = f"+1{area:03d}555{line:04d}"
        if number not in taken:
            return number
    raise ApiError(400, f"No numbers left in area code {area}")


@handles("createPhoneNumber")
def create_phone_number(req: Request) -> Reply:
    body = req.body
    number = body.get("phone_number") or _new_number(req.state, body)
    if not is_e164(number):
        raise ApiError(400, f"phone_number must be in E.164 form: {number!r}")
    kind = _PROVIDER_TYPES.get(body.get("number_provider", "twilio"), "retell-twilio")
    return Reply(201, _add(req.state, number, {**body, "phone_number_type": kind}))


@handles("importPhoneNumber")
def import_phone_number(req: Request) -> Reply:
    body = dict(req.body)
    number = body["phone_number"]
    if not body.pop("ignore_e164_validation", False) and not is_e164(number):
        raise ApiError(400, f"phone_number must be in E.164 form: {number!r}")
    trunk = {
        "termination_uri": body.pop("termination_uri"),
        "auth_username": body.pop("sip_trunk_auth_username", None),
        "transport": body.get("transport"),
    }
    body["sip_trunk_auth_password"] = body.pop("sip_trunk_auth_password", None)
    record = {**body, "phone_number_type": "custom", "sip_outbound_trunk_config": trunk}
    return Reply(201, _add(req.state, number, record))


@handles("updatePhoneNumber")
def update_phone_number(req: Request) -> Reply:
    record = NUMBERS.at(req)
    body = dict(req.body)
    trunk = record.get("sip_outbound_trunk_config")
    if trunk is not None:
        trunk.update({name: body[name] for name in _TRUNK_FIELDS if name in body})
    # Kept like the import's password, and like it never part of an answer.
    if "auth_password" in body:
        body["sip_trunk_auth_password"] = body.pop("auth_password")
    return Reply(200, NUMBERS.change(req.state, record, body))
