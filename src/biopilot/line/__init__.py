"""Line connectivity: OPC UA client and server, reconnect, backfill and write-back."""
