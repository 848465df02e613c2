"""pyserial URL handlers: ``sim://`` (see protocol_sim)."""
