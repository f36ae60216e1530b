"""mpqr-kiosk: a countertop daemon for Mercado Pago in-store QR payments (attended model)."""

__version__ = "0.1.0"
