-- The online store: products with their stock, orders with their items, each order job's
-- state, and the one-time effects (mail, warehouse notice) of each order.

CREATE TABLE products (
    sku         text PRIMARY KEY,
    name        text NOT NULL,
    price_cents bigint NOT NULL CHECK (price_cents >= 0),
    -- Never negative: the inventory job takes stock only where enough is left.
    stock       integer NOT NULL CHECK (stock >= 0)
);

-- Sample products, so a fresh stack can take orders (`GET /products`).
INSERT INTO products (sku, name, price_cents, stock) VALUES
    ('MUG-01', 'Enamel mug', 1200, 100),
    ('TEE-M', 'T-shirt, size M', 2000, 50),
    ('POSTER-A2', 'Poster, A2', 1500, 20),
    ('STICKERS', 'Sticker pack', 400, 1000),
    ('LAMP-01', 'Desk lamp (last one)', 4900, 1);

CREATE TABLE orders (
    id               uuid PRIMARY KEY,
    email            text NOT NULL,
    card_last4       text NOT NULL,
    total_cents      bigint NOT NULL,
    -- Set once, by the inventory job that took the order's stock: a redelivered job finds
    -- it set and takes nothing again.
    stock_taken_at   timestamptz,
    -- Why a person must look at the order (e.g. out of stock); the order's state is then
    -- needs_attention.
    attention_reason text,
    warehouse_notified_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE order_items (
    order_id    uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    sku         text NOT NULL REFERENCES products (sku),
    quantity    integer NOT NULL CHECK (quantity > 0),
    price_cents bigint NOT NULL,
    PRIMARY KEY (order_id, sku)
);

CREATE TABLE order_jobs (
    order_id   uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    kind       text NOT NULL,
    state      text NOT NULL DEFAULT 'queued'
               CHECK (state IN ('queued', 'running', 'retrying', 'done', 'failed', 'stalled')),
    attempt    integer NOT NULL DEFAULT 0,
    error      text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, kind)
);

-- `sending` before the SMTP exchange, `sent` after: a redelivery after `sent` sends nothing.
CREATE TABLE order_mails (
    order_id uuid PRIMARY KEY REFERENCES orders (id) ON DELETE CASCADE,
    state    text NOT NULL CHECK (state IN ('sending', 'sent')),
    sent_at  timestamptz
);
