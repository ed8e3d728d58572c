CREATE TABLE api_app (
    uuid uuid NOT NULL,
    created timestamp with time zone NOT NULL,
    updated timestamp with time zone NOT NULL,
    id character varying(24),
    structure text NOT NULL,
    owner_id integer NOT NULL
);

CREATE TABLE api_appsettings (
    uuid uuid NOT NULL,
    created timestamp with time zone NOT NULL,
    updated timestamp with time zone NOT NULL,
    maintenance boolean,
    routable boolean,
    app_id uuid NOT NULL,
    owner_id integer NOT NULL,
    whitelist character varying(50)[] NOT NULL,
    autoscale text NOT NULL
);

CREATE TABLE api_build (
    uuid uuid NOT NULL,
    created timestamp with time zone NOT NULL,
    updated timestamp with time zone NOT NULL,
    image text NOT NULL,
    sha character varying(40) NOT NULL,
    procfile text NOT NULL,
    dockerfile text NOT NULL,
    app_id uuid NOT NULL,
    owner_id integer NOT NULL
);

CREATE TABLE api_certificate (
    id serial NOT NULL,
    created timestamp with time zone NOT NULL,
    updated timestamp with time zone NOT NULL,
    certificate text NOT NULL,
    key text NOT NULL,
    common_name text,
    expires timestamp with time zone NOT NULL,
    owner_id integer NOT NULL,
    fingerprint character varying(96) NOT NULL,
    name character varying(253) NOT NULL,
    san character varying(253)[],
    issuer text NOT NULL,
    starts timestamp with time zone NOT NULL,
    subject text NOT NULL
);

CREATE TABLE api_config (
    uuid uuid NOT NULL,
    created timestamp with time zone NOT NULL,
    updated timestamp with time zone NOT NULL,
    "values" text NOT NULL,
    memory text NOT NULL,
    cpu text NOT NULL,
    tags text NOT NULL,
    app_id uuid NOT NULL,
    owner_id integer NOT NULL,
    registry text NOT NULL,
    healthcheck text NOT NULL
);

CREATE TABLE api_domain (
    id serial NOT NULL,
    created timestamp with time zone NOT NULL,
    updated timestamp with time zone NOT NULL,
    domain text NOT NULL,
    app_id uuid NOT NULL,
    owner_id integer NOT NULL,
    certificate_id integer
);

CREATE TABLE api_key (
    uuid uuid NOT NULL,
    created timestamp with time zone NOT NULL,
    updated timestamp with time zone NOT NULL,
    id character varying(128) NOT NULL,
    public text NOT NULL,
    fingerprint character varying(128) NOT NULL,
    owner_id integer NOT NULL
);

CREATE TABLE api_release (
    uuid uuid NOT NULL,
    created timestamp with time zone NOT NULL,
    updated timestamp with time zone NOT NULL,
    version integer NOT NULL,
    summary text,
    app_id uuid NOT NULL,
    build_id uuid,
    config_id uuid NOT NULL,
    owner_id integer NOT NULL,
    CONSTRAINT api_release_version_check CHECK ((version >= 0))
);

CREATE TABLE api_tls (
    uuid uuid NOT NULL,
    created timestamp with time zone NOT NULL,
    updated timestamp with time zone NOT NULL,
    https_enforced boolean,
    app_id uuid NOT NULL,
    owner_id integer NOT NULL
);

CREATE TABLE auth_group (
    id serial NOT NULL,
    name character varying(150) NOT NULL
);

CREATE TABLE auth_group_permissions (
    id serial NOT NULL,
    group_id integer NOT NULL,
    permission_id integer NOT NULL
);

CREATE TABLE auth_permission (
    id serial NOT NULL,
    name character varying(255) NOT NULL,
    content_type_id integer NOT NULL,
    codename character varying(100) NOT NULL
);

CREATE TABLE auth_user (
    id serial NOT NULL,
    password character varying(128) NOT NULL,
    last_login timestamp with time zone,
    is_superuser boolean NOT NULL,
    username character varying(150) NOT NULL,
    first_name character varying(30) NOT NULL,
    last_name character varying(150) NOT NULL,
    email character varying(254) NOT NULL,
    is_staff boolean NOT NULL,
    is_active boolean NOT NULL,
    date_joined timestamp with time zone NOT NULL
);

CREATE TABLE auth_user_groups (
    id serial NOT NULL,
    user_id integer NOT NULL,
    group_id integer NOT NULL
);

CREATE TABLE auth_user_user_permissions (
    id serial NOT NULL,
    user_id integer NOT NULL,
    permission_id integer NOT NULL
);

CREATE TABLE authtoken_token (
    key character varying(40) NOT NULL,
    created timestamp with time zone NOT NULL,
    user_id integer NOT NULL
);

CREATE TABLE django_content_type (
    id serial NOT NULL,
    app_label character varying(100) NOT NULL,
    model character varying(100) NOT NULL
);

CREATE TABLE django_migrations (
    id serial NOT NULL,
    app character varying(255) NOT NULL,
    name character varying(255) NOT NULL,
    applied timestamp with time zone NOT NULL
);

CREATE TABLE django_session (
    session_key character varying(40) NOT NULL,
    session_data text NOT NULL,
    expire_date timestamp with time zone NOT NULL
);

CREATE TABLE guardian_groupobjectpermission (
    id serial NOT NULL,
    object_pk character varying(255) NOT NULL,
    content_type_id integer NOT NULL,
    group_id integer NOT NULL,
    permission_id integer NOT NULL
);

CREATE TABLE guardian_userobjectpermission (
    id serial NOT NULL,
    object_pk character varying(255) NOT NULL,
    content_type_id integer NOT NULL,
    permission_id integer NOT NULL,
    user_id integer NOT NULL
);

ALTER TABLE api_app
    ADD CONSTRAINT api_app_id_key UNIQUE (id);

ALTER TABLE api_app
    ADD CONSTRAINT api_app_pkey PRIMARY KEY (uuid);

ALTER TABLE api_appsettings
    ADD CONSTRAINT api_appsettings_app_id_uuid_270b9c16_uniq UNIQUE (app_id, uuid);

ALTER TABLE api_appsettings
    ADD CONSTRAINT api_appsettings_pkey PRIMARY KEY (uuid);

ALTER TABLE api_build
    ADD CONSTRAINT api_build_app_id_uuid_0a142ee9_uniq UNIQUE (app_id, uuid);

ALTER TABLE api_build
    ADD CONSTRAINT api_build_pkey PRIMARY KEY (uuid);

ALTER TABLE api_certificate
    ADD CONSTRAINT api_certificate_name_key UNIQUE (name);

ALTER TABLE api_certificate
    ADD CONSTRAINT api_certificate_pkey PRIMARY KEY (id);

ALTER TABLE api_config
    ADD CONSTRAINT api_config_app_id_uuid_f49723a8_uniq UNIQUE (app_id, uuid);

ALTER TABLE api_config
    ADD CONSTRAINT api_config_pkey PRIMARY KEY (uuid);

ALTER TABLE api_domain
    ADD CONSTRAINT api_domain_domain_key UNIQUE (domain);

ALTER TABLE api_domain
    ADD CONSTRAINT api_domain_pkey PRIMARY KEY (id);

ALTER TABLE api_key
    ADD CONSTRAINT api_key_id_095e8b3a_uniq UNIQUE (id);

ALTER TABLE api_key
    ADD CONSTRAINT api_key_owner_id_fingerprint_17cba2c3_uniq UNIQUE (owner_id, fingerprint);

ALTER TABLE api_key
    ADD CONSTRAINT api_key_pkey PRIMARY KEY (uuid);

ALTER TABLE api_key
    ADD CONSTRAINT api_key_public_key UNIQUE (public);

ALTER TABLE api_release
    ADD CONSTRAINT api_release_app_id_version_e492eaee_uniq UNIQUE (app_id, version);

ALTER TABLE api_release
    ADD CONSTRAINT api_release_pkey PRIMARY KEY (uuid);

ALTER TABLE api_tls
    ADD CONSTRAINT api_tls_app_id_uuid_ba010077_uniq UNIQUE (app_id, uuid);

ALTER TABLE api_tls
    ADD CONSTRAINT api_tls_pkey PRIMARY KEY (uuid);

ALTER TABLE auth_group
    ADD CONSTRAINT auth_group_name_key UNIQUE (name);

ALTER TABLE auth_group_permissions
    ADD CONSTRAINT auth_group_permissions_group_id_permission_id_0cd325b0_uniq UNIQUE (group_id, permission_id);

ALTER TABLE auth_group_permissions
    ADD CONSTRAINT auth_group_permissions_pkey PRIMARY KEY (id);

ALTER TABLE auth_group
    ADD CONSTRAINT auth_group_pkey PRIMARY KEY (id);

ALTER TABLE auth_permission
    ADD CONSTRAINT auth_permission_content_type_id_codename_01ab375a_uniq UNIQUE (content_type_id, codename);

ALTER TABLE auth_permission
    ADD CONSTRAINT auth_permission_pkey PRIMARY KEY (id);

ALTER TABLE auth_user_groups
    ADD CONSTRAINT auth_user_groups_pkey PRIMARY KEY (id);

ALTER TABLE auth_user_groups
    ADD CONSTRAINT auth_user_groups_user_id_group_id_94350c0c_uniq UNIQUE (user_id, group_id);

ALTER TABLE auth_user
    ADD CONSTRAINT auth_user_pkey PRIMARY KEY (id);

ALTER TABLE auth_user_user_permissions
    ADD CONSTRAINT auth_user_user_permissions_pkey PRIMARY KEY (id);

ALTER TABLE auth_user_user_permissions
    ADD CONSTRAINT auth_user_user_permissions_user_id_permission_id_14a6b632_uniq UNIQUE (user_id, permission_id);

ALTER TABLE auth_user
    ADD CONSTRAINT auth_user_username_key UNIQUE (username);

ALTER TABLE authtoken_token
    ADD CONSTRAINT authtoken_token_pkey PRIMARY KEY (key);

ALTER TABLE authtoken_token
    ADD CONSTRAINT authtoken_token_user_id_key UNIQUE (user_id);

ALTER TABLE django_content_type
    ADD CONSTRAINT django_content_type_app_label_model_76bd3d3b_uniq UNIQUE (app_label, model);

ALTER TABLE django_content_type
    ADD CONSTRAINT django_content_type_pkey PRIMARY KEY (id);

ALTER TABLE django_migrations
    ADD CONSTRAINT django_migrations_pkey PRIMARY KEY (id);

ALTER TABLE django_session
    ADD CONSTRAINT django_session_pkey PRIMARY KEY (session_key);

ALTER TABLE guardian_groupobjectpermission
    ADD CONSTRAINT guardian_groupobjectperm_group_id_permission_id_o_3f189f7c_uniq UNIQUE (group_id, permission_id, object_pk);

ALTER TABLE guardian_groupobjectpermission
    ADD CONSTRAINT guardian_groupobjectpermission_pkey PRIMARY KEY (id);

ALTER TABLE guardian_userobjectpermission
    ADD CONSTRAINT guardian_userobjectpermi_user_id_permission_id_ob_b0b3d2fc_uniq UNIQUE (user_id, permission_id, object_pk);

ALTER TABLE guardian_userobjectpermission
    ADD CONSTRAINT guardian_userobjectpermission_pkey PRIMARY KEY (id);

CREATE INDEX api_app_id_fc451c07_like ON api_app USING btree (id varchar_pattern_ops);

CREATE INDEX api_app_owner_id_cbebbc18 ON api_app USING btree (owner_id);

CREATE INDEX api_appsettings_app_id_7efe8542 ON api_appsettings USING btree (app_id);

CREATE INDEX api_appsettings_owner_id_83ed19f7 ON api_appsettings USING btree (owner_id);

CREATE INDEX api_build_app_id_fe641a7d ON api_build USING btree (app_id);

CREATE INDEX api_build_owner_id_1539e8f2 ON api_build USING btree (owner_id);

CREATE INDEX api_certificate_name_e6edbec5_like ON api_certificate USING btree (name varchar_pattern_ops);

CREATE INDEX api_certificate_owner_id_42adf0cd ON api_certificate USING btree (owner_id);

CREATE INDEX api_config_app_id_8632bf0d ON api_config USING btree (app_id);

CREATE INDEX api_config_owner_id_15fcfd4d ON api_config USING btree (owner_id);

CREATE INDEX api_domain_app_id_6acdbe77 ON api_domain USING btree (app_id);

CREATE INDEX api_domain_certificate_id_24fc6e9f ON api_domain USING btree (certificate_id);

CREATE INDEX api_domain_domain_cf8d9ba9_like ON api_domain USING btree (domain text_pattern_ops);

CREATE INDEX api_domain_owner_id_4c2843c9 ON api_domain USING btree (owner_id);

CREATE INDEX api_key_id_095e8b3a_like ON api_key USING btree (id varchar_pattern_ops);

CREATE INDEX api_key_owner_id_e9b7dba6 ON api_key USING btree (owner_id);

CREATE INDEX api_key_public_52103b8a_like ON api_key USING btree (public text_pattern_ops);

CREATE INDEX api_release_app_id_bd26593f ON api_release USING btree (app_id);

CREATE INDEX api_release_build_id_956f3946 ON api_release USING btree (build_id);

CREATE INDEX api_release_config_id_23c173cb ON api_release USING btree (config_id);

CREATE INDEX api_release_owner_id_e8bd2e47 ON api_release USING btree (owner_id);

CREATE INDEX api_tls_app_id_a03b23ed ON api_tls USING btree (app_id);

CREATE INDEX api_tls_owner_id_278d6863 ON api_tls USING btree (owner_id);

CREATE INDEX auth_group_name_a6ea08ec_like ON auth_group USING btree (name varchar_pattern_ops);

CREATE INDEX auth_group_permissions_group_id_b120cbf9 ON auth_group_permissions USING btree (group_id);

CREATE INDEX auth_group_permissions_permission_id_84c5c92e ON auth_group_permissions USING btree (permission_id);

CREATE INDEX auth_permission_content_type_id_2f476e4b ON auth_permission USING btree (content_type_id);

CREATE INDEX auth_user_groups_group_id_97559544 ON auth_user_groups USING btree (group_id);

CREATE INDEX auth_user_groups_user_id_6a12ed8b ON auth_user_groups USING btree (user_id);

CREATE INDEX auth_user_user_permissions_permission_id_1fbb5f2c ON auth_user_user_permissions USING btree (permission_id);

CREATE INDEX auth_user_user_permissions_user_id_a95ead1b ON auth_user_user_permissions USING btree (user_id);

CREATE INDEX auth_user_username_6821ab7c_like ON auth_user USING btree (username varchar_pattern_ops);

CREATE INDEX authtoken_token_key_10f0b77e_like ON authtoken_token USING btree (key varchar_pattern_ops);

CREATE INDEX django_session_expire_date_a5c62663 ON django_session USING btree (expire_date);

CREATE INDEX django_session_session_key_c0390e0f_like ON django_session USING btree (session_key varchar_pattern_ops);

CREATE INDEX guardian_gr_content_ae6aec_idx ON guardian_groupobjectpermission USING btree (content_type_id, object_pk);

CREATE INDEX guardian_groupobjectpermission_content_type_id_7ade36b8 ON guardian_groupobjectpermission USING btree (content_type_id);

CREATE INDEX guardian_groupobjectpermission_group_id_4bbbfb62 ON guardian_groupobjectpermission USING btree (group_id);

CREATE INDEX guardian_groupobjectpermission_permission_id_36572738 ON guardian_groupobjectpermission USING btree (permission_id);

CREATE INDEX guardian_us_content_179ed2_idx ON guardian_userobjectpermission USING btree (content_type_id, object_pk);

CREATE INDEX guardian_userobjectpermission_content_type_id_2e892405 ON guardian_userobjectpermission USING btree (content_type_id);

CREATE INDEX guardian_userobjectpermission_permission_id_71807bfc ON guardian_userobjectpermission USING btree (permission_id);

CREATE INDEX guardian_userobjectpermission_user_id_d5c1e964 ON guardian_userobjectpermission USING btree (user_id);

ALTER TABLE api_app
    ADD CONSTRAINT api_app_owner_id_cbebbc18_fk_auth_user_id FOREIGN KEY (owner_id) REFERENCES auth_user(id) DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE api_appsettings
    ADD CONSTRAINT api_appsettings_app_id_7efe8542_fk_api_app_uuid FOREIGN KEY (app_id) REFERENCES api_app(uuid) DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE api_appsettings
    ADD CONSTRAINT api_appsettings_owner_id_83ed19f7_fk_auth_user_id FOREIGN KEY (owner_id) REFERENCES auth_user(id) DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE api_build
    ADD CONSTRAINT api_build_app_id_fe641a7d_fk_api_app_uuid FOREIGN KEY (app_id) REFERENCES api_app(uuid) DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE api_build
    ADD CONSTRAINT api_build_owner_id_1539e8f2_fk_auth_user_id FOREIGN KEY (owner_id) REFERENCES auth_user(id) DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE api_certificate
    ADD CONSTRAINT api_certificate_owner_id_42adf0cd_fk_auth_user_id FOREIGN KEY (owner_id) REFERENCES auth_user(id) DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE api_config
    ADD CONSTRAINT api_config_app_id_8632bf0d_fk_api_app_uuid FOREIGN KEY (app_id) REFERENCES api_app(uuid) DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE api_config
    ADD CONSTRAINT api_config_owner_id_15fcfd4d_fk_auth_user_id FOREIGN KEY (owner_id) REFERENCES auth_user(id) DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE api_domain
    ADD CONSTRAINT api_domain_app_id_6acdbe77_fk_api_app_uuid FOREIGN KEY (app_id) REFERENCES api_app(uuid) DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE api_domain
    ADD CONSTRAINT api_domain_certificate_id_24fc6e9f_fk_api_certificate_id FOREIGN KEY (certificate_id) REFERENCES api_certificate(id) DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE api_domain
    ADD CONSTRAINT api_domain_owner_id_4c2843c9_fk_auth_user_id FOREIGN KEY (owner_id) REFERENCES auth_user(id) DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE api_key
    ADD CONSTRAINT api_key_owner_id_e9b7dba6_fk_auth_user_id FOREIGN KEY (owner_id) REFERENCES auth_user(id) DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE api_release
    ADD CONSTRAINT api_release_app_id_bd26593f_fk_api_app_uuid FOREIGN KEY (app_id) REFERENCES api_app(uuid) DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE api_release
    ADD CONSTRAINT api_release_build_id_956f3946_fk_api_build_uuid FOREIGN KEY (build_id) REFERENCES api_build(uuid) DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE api_release
    ADD CONSTRAINT api_release_config_id_23c173cb_fk_api_config_uuid FOREIGN KEY (config_id) REFERENCES api_config(uuid) DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE api_release
    ADD CONSTRAINT api_release_owner_id_e8bd2e47_fk_auth_user_id FOREIGN KEY (owner_id) REFERENCES auth_user(id) DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE api_tls
    ADD CONSTRAINT api_tls_app_id_a03b23ed_fk_api_app_uuid FOREIGN KEY (app_id) REFERENCES api_app(uuid) DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE api_tls
    ADD CONSTRAINT api_tls_owner_id_278d6863_fk_auth_user_id FOREIGN KEY (owner_id) REFERENCES auth_user(id) DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE auth_group_permissions
    ADD CONSTRAINT auth_group_permissio_permission_id_84c5c92e_fk_auth_perm FOREIGN KEY (permission_id) REFERENCES auth_permission(id) DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE auth_group_permissions
    ADD CONSTRAINT auth_group_permissions_group_id_b120cbf9_fk_auth_group_id FOREIGN KEY (group_id) REFERENCES auth_group(id) DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE auth_permission
    ADD CONSTRAINT auth_permission_content_type_id_2f476e4b_fk_django_co FOREIGN KEY (content_type_id) REFERENCES django_content_type(id) DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE auth_user_groups
    ADD CONSTRAINT auth_user_groups_group_id_97559544_fk_auth_group_id FOREIGN KEY (group_id) REFERENCES auth_group(id) DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE auth_user_groups
    ADD CONSTRAINT auth_user_groups_user_id_6a12ed8b_fk_auth_user_id FOREIGN KEY (user_id) REFERENCES auth_user(id) DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE auth_user_user_permissions
    ADD CONSTRAINT auth_user_user_permi_permission_id_1fbb5f2c_fk_auth_perm FOREIGN KEY (permission_id) REFERENCES auth_permission(id) DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE auth_user_user_permissions
    ADD CONSTRAINT auth_user_user_permissions_user_id_a95ead1b_fk_auth_user_id FOREIGN KEY (user_id) REFERENCES auth_user(id) DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE authtoken_token
    ADD CONSTRAINT authtoken_token_user_id_35299eff_fk_auth_user_id FOREIGN KEY (user_id) REFERENCES auth_user(id) DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE guardian_groupobjectpermission
    ADD CONSTRAINT guardian_groupobject_content_type_id_7ade36b8_fk_django_co FOREIGN KEY (content_type_id) REFERENCES django_content_type(id) DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE guardian_groupobjectpermission
    ADD CONSTRAINT guardian_groupobject_group_id_4bbbfb62_fk_auth_grou FOREIGN KEY (group_id) REFERENCES auth_group(id) DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE guardian_groupobjectpermission
    ADD CONSTRAINT guardian_groupobject_permission_id_36572738_fk_auth_perm FOREIGN KEY (permission_id) REFERENCES auth_permission(id) DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE guardian_userobjectpermission
    ADD CONSTRAINT guardian_userobjectp_content_type_id_2e892405_fk_django_co FOREIGN KEY (content_type_id) REFERENCES django_content_type(id) DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE guardian_userobjectpermission
    ADD CONSTRAINT guardian_userobjectp_permission_id_71807bfc_fk_auth_perm FOREIGN KEY (permission_id) REFERENCES auth_permission(id) DEFERRABLE INITIALLY DEFERRED;

ALTER TABLE guardian_userobjectpermission
    ADD CONSTRAINT guardian_userobjectpermission_user_id_d5c1e964_fk_auth_user_id FOREIGN KEY (user_id) REFERENCES auth_user(id) DEFERRABLE INITIALLY DEFERRED;
