"""waconnect: a self-hostable WhatsApp engagement platform."""

__version__ = "0.1.0"
