"""Workflow records: approvals, incidents, hypotheses, profiles and journal changes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from typing import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("benchmark", sa.String(500), nullable=False),
        sa.Column("metric", sa.String(100), nullable=True),
        sa.Column("commit", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("author", sa.String(255), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        _ts("created_at"),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_approvals"),
    )
    op.create_index("ix_approvals_benchmark", "approvals", ["benchmark"])
    op.create_index("ix_approvals_commit", "approvals", ["commit"])
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("project", sa.Text(), nullable=False),
        sa.Column("benchmarks", sa.JSON(), nullable=False),
        sa.Column("metric", sa.String(100), nullable=True),
        _ts("opened_at"),
        _ts("closed_at", nullable=True),
        sa.Column("commit_at_open", sa.String(64), nullable=True),
        sa.Column("baseline_run_id", sa.Integer(), nullable=True),
        sa.Column("verify_run_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.CheckConstraint("status IN ('open', 'closed')", name="ck_incidents_status"),
        sa.ForeignKeyConstraint(["baseline_run_id"], ["runs.id"],
                                name="fk_incidents_baseline_run_id_runs", ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["verify_run_id"], ["runs.id"],
                                name="fk_incidents_verify_run_id_runs", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_incidents"),
    )
    op.create_index("ix_incidents_status_project", "incidents", ["status", "project"])
    op.create_table(
        "hypotheses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("expect", sa.JSON(), nullable=False),
        sa.Column("expected_share", sa.Double(), nullable=True),
        _ts("created_at"),
        sa.Column("outcome", sa.String(16), nullable=True),
        _ts("checked_at", nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.CheckConstraint("outcome IS NULL OR outcome IN ('confirmed', 'refuted', 'unclear')",
                           name="ck_hypotheses_outcome"),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"],
                                name="fk_hypotheses_incident_id_incidents", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_hypotheses"),
    )
    op.create_index("ix_hypotheses_incident_id", "hypotheses", ["incident_id"])
    op.create_table(
        "profiles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("hypothesis_id", sa.Integer(), nullable=True),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("profiler", sa.String(32), nullable=False),
        sa.Column("commit", sa.String(64), nullable=True),
        sa.Column("dirty", sa.Boolean(), nullable=False),
        _ts("created_at"),
        sa.Column("duration", sa.Double(), nullable=False),
        sa.Column("hot_spots", sa.JSON(), nullable=False),
        sa.Column("signals", sa.JSON(), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"],
                                name="fk_profiles_incident_id_incidents", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["hypothesis_id"], ["hypotheses.id"],
                                name="fk_profiles_hypothesis_id_hypotheses", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_profiles"),
    )
    op.create_index("ix_profiles_incident_id", "profiles", ["incident_id"])
    op.create_table(
        "changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("kind", sa.String(32), nullable=True),
        sa.Column("workflow", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("hypothesis", sa.Text(), nullable=True),
        sa.Column("expected", sa.JSON(), nullable=False),
        sa.Column("actual", sa.JSON(), nullable=False),
        sa.Column("risk_score", sa.Double(), nullable=True),
        sa.Column("risk_factors", sa.JSON(), nullable=False),
        sa.Column("rollback_plan", sa.Text(), nullable=True),
        sa.Column("baseline_run_id", sa.Integer(), nullable=True),
        sa.Column("verification_run_ids", sa.JSON(), nullable=False),
        sa.Column("commits", sa.JSON(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"],
                                name="fk_changes_incident_id_incidents", ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["baseline_run_id"], ["runs.id"],
                                name="fk_changes_baseline_run_id_runs", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_changes"),
    )
    op.create_index("ix_changes_incident_id", "changes", ["incident_id"])
    op.create_index("ix_changes_created_at", "changes", ["created_at"])


def downgrade() -> None:
    for table in ("changes", "profiles", "hypotheses", "incidents", "approvals"):
        op.drop_table(table)
