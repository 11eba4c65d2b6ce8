from django import template

register = template.Library()

#: How many avatar colours the stylesheet defines (.tone-0 … .tone-5).
TONES = 6


@register.filter
def tone(pk: object) -> int:
    """A stable colour for a person's avatar, from their primary key."""
    try:
        return int(str(pk)) % TONES
    except ValueError:
        return 0


@register.filter
def percent(part: object, whole: object) -> int:
    """``part`` of ``whole`` as a whole percentage (0 when there is no whole)."""
    try:
        part, whole = int(str(part)), int(str(whole))
    except ValueError:
        return 0
    return round(100 * part / whole) if whole > 0 else 0
