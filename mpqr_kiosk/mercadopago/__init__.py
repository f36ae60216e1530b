"""The Mercado Pago API: HTTP client, backends, typed errors, EMVCo payloads."""
