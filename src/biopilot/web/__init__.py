"""The REST API, the browser cockpit and the HTML reports."""
