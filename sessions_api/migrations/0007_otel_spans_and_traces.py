from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("sessions_api", "0006_session_index_revision"),
    ]

    operations = [
        migrations.CreateModel(
            name="OtelTrace",
            fields=[
                (
                    "trace_id",
                    models.CharField(max_length=32, primary_key=True, serialize=False),
                ),
                ("session_key", models.CharField(max_length=512)),
                ("grouped_by", models.CharField(max_length=32)),
                ("received_at", models.DateTimeField()),
            ],
        ),
        migrations.CreateModel(
            name="OtelSpan",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("trace_id", models.CharField(max_length=32)),
                ("span_id", models.CharField(max_length=16)),
                ("session_key", models.CharField(blank=True, default="", max_length=512)),
                ("grouped_by", models.CharField(blank=True, default="", max_length=32)),
                ("body", models.BinaryField()),
                ("received_at", models.DateTimeField()),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("trace_id", "span_id"), name="otelspan_trace_span"
                    )
                ],
            },
        ),
    ]
