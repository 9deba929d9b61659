-- Release 2's list-version tables, trigger functions and triggers on PostgreSQL (pg_dump of `ptportal init`).
CREATE TABLE file_list_versions (
    order_id integer NOT NULL,
    version bigint NOT NULL
);

CREATE TABLE order_list_versions (
    customer_id integer NOT NULL,
    version bigint NOT NULL
);

CREATE TABLE upload_list_versions (
    id integer NOT NULL,
    version bigint NOT NULL
);

CREATE SEQUENCE upload_list_versions_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE upload_list_versions_id_seq OWNED BY upload_list_versions.id;

ALTER TABLE ONLY upload_list_versions ALTER COLUMN id SET DEFAULT nextval('upload_list_versions_id_seq'::regclass);

ALTER TABLE ONLY file_list_versions
    ADD CONSTRAINT file_list_versions_pkey PRIMARY KEY (order_id);

ALTER TABLE ONLY order_list_versions
    ADD CONSTRAINT order_list_versions_pkey PRIMARY KEY (customer_id);

ALTER TABLE ONLY upload_list_versions
    ADD CONSTRAINT upload_list_versions_pkey PRIMARY KEY (id);

ALTER TABLE ONLY file_list_versions
    ADD CONSTRAINT file_list_versions_order_id_fkey FOREIGN KEY (order_id) REFERENCES orders(id) ON DELETE CASCADE;

ALTER TABLE ONLY order_list_versions
    ADD CONSTRAINT order_list_versions_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES clients(id) ON DELETE CASCADE;

CREATE FUNCTION file_list_on_file_delete() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO file_list_versions (order_id, version) SELECT id, 1 FROM orders WHERE id = OLD.order_id ON CONFLICT (order_id) DO UPDATE SET version = file_list_versions.version + 1; RETURN NULL; END $$;

CREATE FUNCTION file_list_on_file_insert() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO file_list_versions (order_id, version) SELECT id, 1 FROM orders WHERE id = NEW.order_id ON CONFLICT (order_id) DO UPDATE SET version = file_list_versions.version + 1; RETURN NULL; END $$;

CREATE FUNCTION file_list_on_file_update() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO file_list_versions (order_id, version) SELECT id, 1 FROM orders WHERE id = OLD.order_id ON CONFLICT (order_id) DO UPDATE SET version = file_list_versions.version + 1;INSERT INTO file_list_versions (order_id, version) SELECT id, 1 FROM orders WHERE id = NEW.order_id ON CONFLICT (order_id) DO UPDATE SET version = file_list_versions.version + 1; RETURN NULL; END $$;

CREATE FUNCTION order_list_on_file_delete() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO order_list_versions (customer_id, version) SELECT customer_id, 1 FROM orders WHERE id = OLD.order_id ON CONFLICT (customer_id) DO UPDATE SET version = order_list_versions.version + 1; RETURN NULL; END $$;

CREATE FUNCTION order_list_on_file_insert() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO order_list_versions (customer_id, version) SELECT customer_id, 1 FROM orders WHERE id = NEW.order_id ON CONFLICT (customer_id) DO UPDATE SET version = order_list_versions.version + 1; RETURN NULL; END $$;

CREATE FUNCTION order_list_on_file_update() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO order_list_versions (customer_id, version) SELECT customer_id, 1 FROM orders WHERE id = OLD.order_id ON CONFLICT (customer_id) DO UPDATE SET version = order_list_versions.version + 1;INSERT INTO order_list_versions (customer_id, version) SELECT customer_id, 1 FROM orders WHERE id = NEW.order_id ON CONFLICT (customer_id) DO UPDATE SET version = order_list_versions.version + 1; RETURN NULL; END $$;

CREATE FUNCTION order_list_on_order_delete() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO order_list_versions (customer_id, version) SELECT OLD.customer_id, 1 WHERE true ON CONFLICT (customer_id) DO UPDATE SET version = order_list_versions.version + 1; RETURN NULL; END $$;

CREATE FUNCTION order_list_on_order_insert() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO order_list_versions (customer_id, version) SELECT NEW.customer_id, 1 WHERE true ON CONFLICT (customer_id) DO UPDATE SET version = order_list_versions.version + 1; RETURN NULL; END $$;

CREATE FUNCTION order_list_on_order_update() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO order_list_versions (customer_id, version) SELECT OLD.customer_id, 1 WHERE true ON CONFLICT (customer_id) DO UPDATE SET version = order_list_versions.version + 1;INSERT INTO order_list_versions (customer_id, version) SELECT NEW.customer_id, 1 WHERE true ON CONFLICT (customer_id) DO UPDATE SET version = order_list_versions.version + 1; RETURN NULL; END $$;

CREATE FUNCTION upload_list_on_customer_update() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO upload_list_versions (id, version) SELECT 1, 1 WHERE true ON CONFLICT (id) DO UPDATE SET version = upload_list_versions.version + 1; RETURN NULL; END $$;

CREATE FUNCTION upload_list_on_delivery_delete() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO upload_list_versions (id, version) SELECT 1, 1 WHERE true ON CONFLICT (id) DO UPDATE SET version = upload_list_versions.version + 1; RETURN NULL; END $$;

CREATE FUNCTION upload_list_on_delivery_insert() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO upload_list_versions (id, version) SELECT 1, 1 WHERE true ON CONFLICT (id) DO UPDATE SET version = upload_list_versions.version + 1; RETURN NULL; END $$;

CREATE FUNCTION upload_list_on_delivery_update() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO upload_list_versions (id, version) SELECT 1, 1 WHERE true ON CONFLICT (id) DO UPDATE SET version = upload_list_versions.version + 1; RETURN NULL; END $$;

CREATE FUNCTION upload_list_on_file_delete() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO upload_list_versions (id, version) SELECT 1, 1 WHERE true ON CONFLICT (id) DO UPDATE SET version = upload_list_versions.version + 1; RETURN NULL; END $$;

CREATE FUNCTION upload_list_on_file_insert() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO upload_list_versions (id, version) SELECT 1, 1 WHERE true ON CONFLICT (id) DO UPDATE SET version = upload_list_versions.version + 1; RETURN NULL; END $$;

CREATE FUNCTION upload_list_on_file_update() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO upload_list_versions (id, version) SELECT 1, 1 WHERE true ON CONFLICT (id) DO UPDATE SET version = upload_list_versions.version + 1; RETURN NULL; END $$;

CREATE FUNCTION upload_list_on_order_update() RETURNS trigger
    LANGUAGE plpgsql
    AS $$ BEGIN INSERT INTO upload_list_versions (id, version) SELECT 1, 1 WHERE true ON CONFLICT (id) DO UPDATE SET version = upload_list_versions.version + 1; RETURN NULL; END $$;

CREATE TRIGGER file_list_on_file_delete AFTER DELETE ON order_file FOR EACH ROW EXECUTE FUNCTION file_list_on_file_delete();

CREATE TRIGGER file_list_on_file_insert AFTER INSERT ON order_file FOR EACH ROW EXECUTE FUNCTION file_list_on_file_insert();

CREATE TRIGGER file_list_on_file_update AFTER UPDATE ON order_file FOR EACH ROW EXECUTE FUNCTION file_list_on_file_update();

CREATE TRIGGER order_list_on_file_delete AFTER DELETE ON order_file FOR EACH ROW EXECUTE FUNCTION order_list_on_file_delete();

CREATE TRIGGER order_list_on_file_insert AFTER INSERT ON order_file FOR EACH ROW EXECUTE FUNCTION order_list_on_file_insert();

CREATE TRIGGER order_list_on_file_update AFTER UPDATE ON order_file FOR EACH ROW WHEN (((old.order_id IS DISTINCT FROM new.order_id) OR ((old.folder)::text IS DISTINCT FROM (new.folder)::text) OR ((old.state)::text IS DISTINCT FROM (new.state)::text))) EXECUTE FUNCTION order_list_on_file_update();

CREATE TRIGGER order_list_on_order_delete AFTER DELETE ON orders FOR EACH ROW EXECUTE FUNCTION order_list_on_order_delete();

CREATE TRIGGER order_list_on_order_insert AFTER INSERT ON orders FOR EACH ROW EXECUTE FUNCTION order_list_on_order_insert();

CREATE TRIGGER order_list_on_order_update AFTER UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION order_list_on_order_update();

CREATE TRIGGER upload_list_on_customer_update AFTER UPDATE ON clients FOR EACH ROW WHEN ((((old.customer_no)::text IS DISTINCT FROM (new.customer_no)::text) OR ((old.name)::text IS DISTINCT FROM (new.name)::text))) EXECUTE FUNCTION upload_list_on_customer_update();

CREATE TRIGGER upload_list_on_delivery_delete AFTER DELETE ON delivery FOR EACH ROW EXECUTE FUNCTION upload_list_on_delivery_delete();

CREATE TRIGGER upload_list_on_delivery_insert AFTER INSERT ON delivery FOR EACH ROW EXECUTE FUNCTION upload_list_on_delivery_insert();

CREATE TRIGGER upload_list_on_delivery_update AFTER UPDATE ON delivery FOR EACH ROW EXECUTE FUNCTION upload_list_on_delivery_update();

CREATE TRIGGER upload_list_on_file_delete AFTER DELETE ON order_file FOR EACH ROW EXECUTE FUNCTION upload_list_on_file_delete();

CREATE TRIGGER upload_list_on_file_insert AFTER INSERT ON order_file FOR EACH ROW EXECUTE FUNCTION upload_list_on_file_insert();

CREATE TRIGGER upload_list_on_file_update AFTER UPDATE ON order_file FOR EACH ROW WHEN (((old.order_id IS DISTINCT FROM new.order_id) OR ((old.folder)::text IS DISTINCT FROM (new.folder)::text) OR ((old.display_name)::text IS DISTINCT FROM (new.display_name)::text) OR (old.size IS DISTINCT FROM new.size) OR ((old.state)::text IS DISTINCT FROM (new.state)::text) OR (old.created_at IS DISTINCT FROM new.created_at) OR (old.received_at IS DISTINCT FROM new.received_at) OR (old.scanned_at IS DISTINCT FROM new.scanned_at) OR (old.released_at IS DISTINCT FROM new.released_at))) EXECUTE FUNCTION upload_list_on_file_update();

CREATE TRIGGER upload_list_on_order_update AFTER UPDATE ON orders FOR EACH ROW WHEN ((((old.project_no)::text IS DISTINCT FROM (new.project_no)::text) OR (old.customer_id IS DISTINCT FROM new.customer_id))) EXECUTE FUNCTION upload_list_on_order_update();
