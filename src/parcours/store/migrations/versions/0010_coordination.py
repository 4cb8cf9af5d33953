"""Wave 1: coordination — no schema change.

Coordination requests are FHIR resources (ServiceRequest, Task, QuestionnaireResponse) found
through the search index (``owner``, ``code``, ``business-status``): no table of their own
(docs/coordination.md, decision D27). The revision is kept so the chain stays stable.

Revision ID: 0010
Revises: 0009
"""

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
