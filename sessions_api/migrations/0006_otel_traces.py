from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("sessions_api", "0005_document_body_encoding"),
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
    ]
