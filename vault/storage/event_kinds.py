"""The kinds of events to token holders, as event_outbox.kind stores them."""

SHREDDED, FIELDS_SHREDDED, DISPOSED, DEIDENTIFIED = "shredded", "fields_shredded", "disposed", "deidentified"
CORRECTED = "corrected"
CONSENT_WITHDRAWN, CONSENT_GIVEN = "consent_withdrawn", "consent_given"
HOLD_PLACED, HOLD_RELEASED = "hold_placed", "hold_released"
KINDS = (SHREDDED, FIELDS_SHREDDED, DISPOSED, DEIDENTIFIED, CORRECTED, CONSENT_WITHDRAWN, CONSENT_GIVEN,
         HOLD_PLACED, HOLD_RELEASED)
