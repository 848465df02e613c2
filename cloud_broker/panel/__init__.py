"""The member panel: members' own web app (docs/member-panel.md)."""
