from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0003_purge_action'),
    ]

    operations = [
        migrations.AlterField(
            model_name='auditevent',
            name='action',
            field=models.CharField(choices=[('read', '閲覧'), ('export', '出力'), ('share', '共有'), ('purge', '廃棄'), ('change', '変更')], default='read', max_length=10),
        ),
    ]
