"""The national tax e-invoice hand-off (سامانه مودیان, API v2): the wire side.

- :mod:`.taxid`    the 22-character tax id, its Verhoeff check digit, the sale's day
- :mod:`.lines`    invoice lines, quantities, VAT and totals in integer Rials
- :mod:`.invoice`  seller, buyer, payments, the invoice and its JSON packet
- :mod:`.wirejson` float-free JSON for packets
- :mod:`.jose`     JWS (RS256, x5c, sigT) inside JWE (RSA-OAEP-256, A256GCM)
- :mod:`.keys`     loading the key (mode 0600) and certificate from PEM files
- :mod:`.responses` reading the system's answers; HTTP status -> error
- :mod:`.client`   :class:`MoadianClient`
- :mod:`.errors`   the error tree (``transient`` says whether to retry)

See docs/tax-invoices.md.
"""

from cloud_broker.tax.client import (
    MAX_BATCH,
    MAX_INQUIRY_IDS,
    PRODUCTION_URL,
    SANDBOX_URL,
    MoadianClient,
    new_request_uid,
)
from cloud_broker.tax.errors import (
    InvalidTaxIdError,
    KeyFileError,
    PacketError,
    SystemMessage,
    TaxAuthError,
    TaxError,
    TaxProtocolError,
    TaxRateLimitedError,
    TaxRejectedError,
    TaxServerError,
    TaxTimeoutError,
    TaxUnavailableError,
    TaxValidationError,
)
from cloud_broker.tax.invoice import (
    Buyer,
    BuyerType,
    Invoice,
    InvoiceSubject,
    Payment,
    Seller,
    Settlement,
    to_packet,
)
from cloud_broker.tax.jose import ServerKey, TaxpayerCredentials
from cloud_broker.tax.keys import load_certificate, load_credentials, load_private_key
from cloud_broker.tax.lines import InvoiceLine, InvoiceTotals, parse_quantity
from cloud_broker.tax.responses import InquiryResult, InquiryStatus, SendResult
from cloud_broker.tax.taxid import (
    TaxIdParts,
    is_valid_tax_id,
    make_tax_id,
    parse_tax_id,
    tax_day,
    tax_id_for_sale,
)

__all__ = [
    "MAX_BATCH",
    "MAX_INQUIRY_IDS",
    "PRODUCTION_URL",
    "SANDBOX_URL",
    "Buyer",
    "BuyerType",
    "InquiryResult",
    "InquiryStatus",
    "InvalidTaxIdError",
    "Invoice",
    "InvoiceLine",
    "InvoiceSubject",
    "InvoiceTotals",
    "KeyFileError",
    "MoadianClient",
    "PacketError",
    "Payment",
    "Seller",
    "SendResult",
    "ServerKey",
    "Settlement",
    "SystemMessage",
    "TaxAuthError",
    "TaxError",
    "TaxIdParts",
    "TaxProtocolError",
    "TaxRateLimitedError",
    "TaxRejectedError",
    "TaxServerError",
    "TaxTimeoutError",
    "TaxUnavailableError",
    "TaxValidationError",
    "TaxpayerCredentials",
    "is_valid_tax_id",
    "load_certificate",
    "load_credentials",
    "load_private_key",
    "make_tax_id",
    "new_request_uid",
    "parse_quantity",
    "parse_tax_id",
    "tax_day",
    "tax_id_for_sale",
    "to_packet",
]
