"""DNS over TLS: contexts (certificates, tickets, validation) and the memory-BIO TLS layer that
the plain DNS-over-TCP protocol classes sit on, on both the frontend and the backend side."""
