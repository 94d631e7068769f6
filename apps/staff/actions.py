"""The audit actions the console's screens and API write (``audit_log.action``), beside bot/services/audit's.

Every view of an owner's data and every change of an escalation is one row, with who and when.
"""

from __future__ import annotations

QUEUE_VIEWED = "queue_viewed"
ESCALATION_CLAIMED = "escalation_claimed"
ESCALATION_ASSIGNED = "escalation_assigned"
ESCALATION_RESOLVED = "escalation_resolved"
CONVERSATION_VIEWED = "conversation_viewed"
CONVERSATIONS_LISTED = "conversations_listed"
OWNER_VIEWED = "owner_viewed"
OWNERS_SEARCHED = "owners_searched"
RECORDS_VIEWED = "records_viewed"
CONVERSATION_TAKEN_OVER = "conversation_taken_over"
STAFF_REPLIED = "staff_replied"
CONVERSATION_HANDED_BACK = "conversation_handed_back"
NLU_INBOX_VIEWED = "nlu_inbox_viewed"
NLU_DECIDED = "nlu_decided"
RECORDS_LISTED = "records_listed"
RECORD_VIEWED = "record_viewed"
RECORD_STATUS_CHANGED = "record_status_changed"
RECORD_ASSIGNED = "record_assigned"
RECORD_NOTE_ADDED = "record_note_added"
INSTALMENT_APPROVED = "instalment_approved"
INSTALMENT_REJECTED = "instalment_rejected"
REVIEW_VIEWED = "review_viewed"
REVIEW_EXPORTED = "review_exported"
