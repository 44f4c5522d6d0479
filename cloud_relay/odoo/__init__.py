"""Everything that speaks Odoo's protocol: the relay's Odoo writer and the Odoo sandbox."""
