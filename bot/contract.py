"""The intent contract from the domain brief: names the NLU must predict, never renamed or merged."""

from __future__ import annotations

OBJECTION_INTENTS: tuple[str, ...] = (
    "objection_fee_too_high",
    "objection_poor_service",
    "objection_pay_later",
    "objection_financial_hardship",
    "objection_developer_design",
    "objection_not_living_here",
    "objection_construction_defect",
    "objection_heating",
    "objection_property_loss",
    "objection_external_nuisance",
)
REQUEST_INTENTS: tuple[str, ...] = (
    "dispute_bill",
    "ask_fee_usage",
    "ask_arrears",
    "ask_payment_methods",
    "promise_to_pay",
    "pay_now",
    "request_installment",
    "report_repair",
    "file_complaint",
    "request_human",
    "threaten_escalation",
    "provide_identity",
)
CHITCHAT_INTENTS: tuple[str, ...] = ("greet", "goodbye", "thank", "affirm", "deny", "out_of_scope")
CONTRACT_INTENTS: tuple[str, ...] = OBJECTION_INTENTS + REQUEST_INTENTS + CHITCHAT_INTENTS

# Intents answered from the playbook: every objection, plus the questions and requests that need the same
# explain-offer-steer treatment.
PLAYBOOK_INTENTS: tuple[str, ...] = OBJECTION_INTENTS + (
    "ask_fee_usage",
    "dispute_bill",
    "request_installment",
    "threaten_escalation",
)
