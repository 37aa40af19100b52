"""PostgreSQL only: composite foreign keys so a transition's steps must be in its own flow.

``(flow_id, from_step_id)`` and ``(flow_id, to_step_id)`` reference ``flows_flowstep(flow_id, id)``
(unique by constraint ``flowstep_flow_id_unique``). Django has no composite foreign keys and a
CHECK constraint cannot read another table, so this is plain SQL. SQLite cannot add a foreign
key to an existing table; there FlowTransition.save() is the guard.
"""

from django.db import migrations

CONSTRAINTS = {
    "flowtransition_from_step_same_flow": "from_step_id",
    "flowtransition_to_step_same_flow": "to_step_id",
}


def add_composite_fks(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, column in CONSTRAINTS.items():
        schema_editor.execute(
            f"ALTER TABLE flows_flowtransition ADD CONSTRAINT {name} "
            f"FOREIGN KEY (flow_id, {column}) REFERENCES flows_flowstep (flow_id, id) "
            "DEFERRABLE INITIALLY DEFERRED"
        )


def drop_composite_fks(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in CONSTRAINTS:
        schema_editor.execute(f"ALTER TABLE flows_flowtransition DROP CONSTRAINT IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("flows", "0001_initial")]

    operations = [migrations.RunPython(add_composite_fks, drop_composite_fks)]
