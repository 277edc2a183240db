"""A dict plus a decorator: how builders are made selectable by name from a recipe."""

from pose_tl.errors import PoseTLError


class Registry:
    """Maps names to builders; a failed lookup lists the valid names."""

    def __init__(self, kind):
        self.kind = kind
        self._entries = {}

    def register(self, name):
        def decorator(obj):
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return decorator

    def get(self, name):
        try:
            return self._entries[name]
        except KeyError:
            raise PoseTLError(
                f"unknown {self.kind} {name!r}; expected one of {sorted(self._entries)}"
            ) from None

    def names(self):
        return sorted(self._entries)

    def __contains__(self, name):
        return name in self._entries
