"""The site's key seam: every wrap, unwrap and signature at the site goes through ``SiteKeys``.

Two providers: key files in the site directory (the default) and keys on a PKCS#11 token.
``open_site_keys`` picks the one the site directory's ``keys.json`` names.
"""
