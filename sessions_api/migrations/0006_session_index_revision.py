from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("sessions_api", "0005_document_body_encoding"),
    ]

    operations = [
        migrations.AddField(
            model_name="session",
            name="index_revision",
            field=models.PositiveIntegerField(default=0),
        ),
    ]
