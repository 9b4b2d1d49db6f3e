from django.db import migrations, models

#: Where the hours to recompute were kept before they had a table: one JSON value.
OLD_STATE = "rollup_analytics:dirty"


def move_dirty_hours_to_their_table(apps, schema_editor):
    """Hours marked in the old JSON value still get recomputed; an overflow there asked for
    a full rebuild, which the next run does anyway when the watermark state says so."""
    JobState = apps.get_model("sessions_api", "JobState")
    RollupDirtyHour = apps.get_model("sessions_api", "RollupDirtyHour")
    from datetime import UTC, datetime

    alias = schema_editor.connection.alias  # the database being migrated, not the default
    state = JobState.objects.using(alias).filter(name=OLD_STATE).first()
    if state is None:
        return
    hours = []
    for value in (state.value or {}).get("hours", []):
        try:
            hour = datetime.fromisoformat(str(value))
        except ValueError:
            continue
        hours.append(RollupDirtyHour(hour=hour if hour.tzinfo else hour.replace(tzinfo=UTC)))
    RollupDirtyHour.objects.using(alias).bulk_create(hours)
    if (state.value or {}).get("overflow"):
        # Forget the rollup watermark: the next run is then a full rebuild.
        JobState.objects.using(alias).filter(name="rollup_analytics").delete()
    state.delete()


class Migration(migrations.Migration):
    dependencies = [
        ("sessions_api", "0014_searchentry_packed_events"),
    ]

    operations = [
        migrations.CreateModel(
            name="RollupDirtyHour",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("hour", models.DateTimeField()),
            ],
        ),
        migrations.RunPython(move_dirty_hours_to_their_table, migrations.RunPython.noop),
    ]
