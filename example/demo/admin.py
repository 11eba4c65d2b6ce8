from django.contrib import admin

from .models import Activity, Entry, Task

admin.site.register(Entry)


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["title", "assignee", "points", "done", "created"]
    list_editable = ["done"]
    list_filter = ["done", "assignee"]
    search_fields = ["title"]


@admin.register(Activity)
class ActivityAdmin(admin.ModelAdmin):
    list_display = ["at", "actor", "verb", "subject"]
