from tetra import ReactiveComponent, public


class ItemName(ReactiveComponent):
    """One row's name, subscribed to the row's own channel: a save sends the new name
    (``Item.Tetra.fields``) and Alpine shows it."""

    name: str = public("")

    def load(self, item, *args, **kwargs):
        self.item = item
        self.name = item.name

    def get_subscription(self):
        return self.item.get_tetra_instance_channel()

    template = """<span id="name-{{ item.pk }}" data-bench x-text="name">{{ name }}</span>"""
