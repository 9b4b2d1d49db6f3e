from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("sessions_api", "0007_otel_spans_and_traces"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="session",
            index=models.Index(
                fields=["agent", "-updated_at", "-id"],
                condition=models.Q(("has_errors", True)),
                name="session_agent_err_upd_idx",
            ),
        ),
    ]
